import shutil

import numpy as np
import pandas as pd
import pytest
from helpers import build_version
from hypothesis import given, settings
from hypothesis import strategies as st

from nucseg.crops import crop_image, crop_starts
from nucseg.datasets import SourceSpec, normalize_dataset, write_targets
from nucseg.folds import assign_folds, fold_sides, held_out_names, materialize_fold
from nucseg.io.images import read_channels, read_tiff
from nucseg.normalize import NormalizeConfig
from nucseg.synth.nuclei import write_ctc, write_demo_sources, write_monuseg
from nucseg.targets import TargetConfig


def test_crop_starts_cover_the_image_and_align_the_last_window():
    assert crop_starts(1000, 256, 200) == [0, 200, 400, 600, 744]
    assert crop_starts(100, 256, 200) == [0]


def test_crops_drop_empty_tiles_and_keep_provenance():
    labels = np.zeros((10, 20), np.int32)
    labels[1:3, 1:3] = 7
    labels[6:9, 15:19] = 9
    crops = list(crop_image(np.arange(200).reshape(10, 20), labels, width=5, step=5))
    assert [c.suffix for c in crops] == ["_r0_c0", "_r5_c15"]
    assert crops[0].labels.max() == 1 and crops[1].image[0, 0] == 5 * 20 + 15


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 8), st.sampled_from("abc")), min_size=3, max_size=40),
    st.integers(2, 5),
    st.integers(0, 50),
)
def test_folds_never_split_an_origin(rows, n_folds, seed):
    manifest = pd.DataFrame(
        {"id": [f"i{k}" for k in range(len(rows))], "origin": [f"o{o}" for o, _ in rows]}
    )
    manifest["category"] = manifest["origin"].map({f"o{o}": c for o, c in rows})
    folds = assign_folds(manifest, n_folds, seed)
    assert folds.between(0, n_folds - 1).all()
    assert (manifest.assign(fold=folds).groupby("origin")["fold"].nunique() == 1).all()


def test_folds_are_stratified_by_category():
    manifest = pd.DataFrame(
        {
            "id": [f"i{k}" for k in range(30)],
            "origin": [f"o{k}" for k in range(30)],
            "category": ["fluo"] * 20 + ["he"] * 10,
        }
    )
    table = pd.crosstab(manifest["category"], assign_folds(manifest, 5, 0))
    assert (table.loc["fluo"] == 4).all() and (table.loc["he"] == 2).all()


def test_fold_folders_are_hardlinks_and_removable(tmp_path):
    write_demo_sources(tmp_path / "raw", n_train=4, n_test=1, seed=2, shapes=((48, 48),))
    manifest = build_version(
        [SourceSpec("s", "kaggle_stage1", tmp_path / "raw" / "stage1_train")], tmp_path / "v1"
    )
    normalize_dataset(tmp_path / "v1", tmp_path / "v1" / "normalized", NormalizeConfig())
    assert write_targets(tmp_path / "v1", tmp_path / "v1" / "targets", TargetConfig()) == 4
    sides = fold_sides(manifest, folds=2, fold=0, valid_fraction=0.0, seed=0)
    counts = materialize_fold(tmp_path / "v1", manifest, sides, tmp_path / "v1" / "folds" / "0")
    assert counts["train"] + counts["valid"] == 4 and counts["valid"] > 0
    image_id = manifest["id"].iloc[0]
    side = sides.iloc[0]
    linked = tmp_path / "v1" / "folds" / "0" / side / "images" / f"{image_id}.tif"
    original = tmp_path / "v1" / "images" / f"{image_id}.tif"
    assert linked.stat().st_ino == original.stat().st_ino
    targets = read_channels(tmp_path / "v1" / "folds" / "0" / side / "targets" / f"{image_id}.tif")
    labels = read_tiff(original.parent.parent / "labels" / f"{image_id}.tif")
    assert targets.shape == (4, *labels.shape)
    shutil.rmtree(tmp_path / "v1" / "folds")
    assert original.is_file()


def test_assembly_crops_large_tiles_and_keeps_their_origin(tmp_path):
    write_monuseg(tmp_path / "tcga", n_tiles=1, seed=1, shape=(200, 200))
    manifest = build_version(
        [SourceSpec("tcga", "monuseg", tmp_path / "tcga", crop=(96, 80))], tmp_path / "v"
    )
    assert len(manifest) == 9 and manifest.origin.nunique() == 1  # starts 0, 80, 104 per axis
    assert (manifest.height == 96).all() and (manifest.n_nuclei > 0).all()
    assert set(manifest.category) == {"histology"}
    assert manifest.id.str.contains("_r104_c80").any()
    folds = assign_folds(manifest.assign(origin=manifest.origin), 2, 0)
    assert folds.nunique() == 1  # all crops of the one original on one side


@pytest.fixture(scope="module")
def mixed_version(tmp_path_factory):
    """A version assembled from all three source formats, two of them cropped."""
    root = tmp_path_factory.mktemp("mixed")
    write_demo_sources(root / "raw", n_train=5, n_test=1, seed=4, shapes=((96, 128),))
    write_monuseg(root / "tcga", n_tiles=3, seed=5, shape=(200, 200))
    write_ctc(root / "ctc", n_frames=6, seed=6, annotate_every=2, shape=(128, 128))
    sources = [
        SourceSpec("kaggle", "kaggle_stage1", root / "raw" / "stage1_train", crop=(64, 64)),
        SourceSpec("tcga", "monuseg", root / "tcga", crop=(96, 80)),
        SourceSpec("ctc", "ctc", root / "ctc"),
    ]
    return build_version(sources, root / "v")


def test_acquisition_folds_hold_whole_acquisitions_and_their_origins_out(mixed_version):
    # every origin inside one acquisition; the CTC frames (one sequence) are one
    assert (mixed_version.groupby("origin").acquisition.nunique() == 1).all()
    ctc = mixed_version[mixed_version.source == "ctc"]
    assert ctc.acquisition.nunique() == 1 and ctc.acquisition.iloc[0].startswith("ctc:")
    for folds, fold in ((1, 0), (2, 0), (2, 1), (3, 2)):
        sides = fold_sides(
            mixed_version,
            folds=folds,
            fold=fold,
            valid_fraction=0.3,
            seed=1,
            group="acquisition",
        )
        per_acquisition = mixed_version.assign(side=sides.to_numpy()).groupby("acquisition")
        assert (per_acquisition.side.nunique() == 1).all()


def test_converted_sources_keep_the_camera_bit_depth(mixed_version, tmp_path_factory):
    from nucseg.io.images import read_image

    version = next(p for p in tmp_path_factory.getbasetemp().glob("mixed*/v"))
    frame_id = mixed_version[mixed_version.source == "ctc"].id.iloc[0]
    stored = read_image(version / "images" / f"{frame_id}.tif")
    raw = read_image(version.parent / "ctc" / "01" / f"t{frame_id[-3:]}.tif")
    assert stored.dtype == np.uint16 and np.array_equal(stored, raw)


@settings(max_examples=40, deadline=None)
@given(
    folds=st.integers(1, 4),
    fold=st.integers(0, 3),
    valid_fraction=st.floats(0.1, 0.5),
    seed=st.integers(0, 1000),
)
def test_assembled_crops_never_put_one_origin_on_both_sides(
    mixed_version, folds, fold, valid_fraction, seed
):
    sides = fold_sides(
        mixed_version, folds=folds, fold=fold % folds, valid_fraction=valid_fraction, seed=seed
    )
    assert set(sides) == {"train", "valid"}
    sides_per_origin = mixed_version.assign(side=sides.to_numpy()).groupby("origin").side
    assert (sides_per_origin.nunique() == 1).all()


@given(
    st.lists(st.sampled_from(["nerve", "empty", "tissue"]), min_size=1, max_size=40),
    st.floats(0.0, 0.9),
    st.integers(0, 5),
)
@settings(max_examples=60, deadline=None)
def test_held_out_names_take_a_share_of_every_stratum_and_never_all(strata, fraction, seed):
    """The hold-out all three tasks split with (nerve images by presence, tissue tiles,
    nuclei groups by category): each stratum gives round(fraction * n) names, at least one
    of two or more when fraction > 0, never its last; the same seed draws the same names."""
    series = pd.Series(strata, index=[f"name{i:02d}" for i in range(len(strata))])
    held = held_out_names(series, fraction, seed)
    assert held == held_out_names(series.sample(frac=1, random_state=1), fraction, seed)
    for _stratum, members in series.groupby(series):
        taken = len(held & set(members.index))
        n = len(members)
        expected = round(fraction * n)
        if fraction > 0 and n >= 2:
            expected = max(1, min(expected, n - 1))
        assert taken == expected


@pytest.mark.parametrize("folds, fold", [(1, 0), (3, 1)])
def test_train_only_sources_keep_the_split_of_the_version_without_them(mixed_version, folds, fold):
    """Images of a ``train_only`` source (e.g. generated tiles added to a real version) are
    on the training side of every fold, and the other images fall where they fall in the
    version without that source: its held-out side is kept."""
    settings = dict(folds=folds, fold=fold, valid_fraction=0.3, seed=1)
    sides = fold_sides(mixed_version, train_only=["tcga"], **settings)
    added = mixed_version.source == "tcga"
    assert added.any() and (sides[added] == "train").all()
    without = fold_sides(mixed_version[~added], **settings)
    assert sides[~added].equals(without) and (without == "valid").any()
