import numpy as np
import pandas as pd
import pytest
from helpers import build_version
from hypothesis import given, settings
from hypothesis import strategies as st

from nucseg.datasets import SourceSpec, read_manifest
from nucseg.errors import NucsegInputError
from nucseg.folds import holdout_split
from nucseg.io.images import read_tiff
from nucseg.normalize import NormalizeConfig
from nucseg.synth.nuclei import write_demo_sources


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.sampled_from(["fluorescence", "histology"])),
        min_size=1,
        max_size=30,
    ),
    st.floats(0, 0.9),
    st.integers(0, 100),
)
def test_holdout_never_puts_one_origin_on_both_sides(rows, fraction, seed):
    manifest = pd.DataFrame(
        {
            "id": [f"i{k}" for k in range(len(rows))],
            "origin": [f"o{o}" for o, _ in rows],
            "category": [c for _, c in rows],
        }
    )
    # one category per origin, as produced by assembly
    manifest["category"] = manifest.groupby("origin")["category"].transform("first")
    train, valid = holdout_split(manifest, fraction, seed)
    assert sorted(train + valid) == sorted(manifest["id"])
    origin_of = dict(zip(manifest["id"], manifest["origin"], strict=True))
    assert not {origin_of[i] for i in train} & {origin_of[i] for i in valid}


def test_assembly_writes_manifest_images_and_labels(tmp_path):
    write_demo_sources(tmp_path / "raw", n_train=3, n_test=1, seed=2, shapes=((64, 64),))
    manifest = build_version(
        [SourceSpec("s", "kaggle_stage1", tmp_path / "raw" / "stage1_train")], tmp_path / "v1"
    )
    assert len(manifest) == 3
    again = read_manifest(tmp_path / "v1" / "manifest.tsv")
    assert list(again["id"]) == sorted(again["id"])
    for row in again.itertuples():
        labels = read_tiff(tmp_path / "v1" / "labels" / f"{row.id}.tif")
        assert labels.max() == row.n_nuclei and labels.shape == (row.height, row.width)
        assert row.normalization == NormalizeConfig().describe(row.category)


def test_duplicate_ids_across_sources_are_refused(tmp_path):
    write_demo_sources(tmp_path / "raw", n_train=1, n_test=1, seed=2, shapes=((64, 64),))
    source = tmp_path / "raw" / "stage1_train"
    with pytest.raises(NucsegInputError, match="also occurs in source a"):
        build_version(
            [SourceSpec("a", "kaggle_stage1", source), SourceSpec("b", "kaggle_stage1", source)],
            tmp_path / "v",
        )


def test_mask_of_wrong_size_is_named(tmp_path):
    write_demo_sources(tmp_path / "raw", n_train=1, n_test=1, seed=2, shapes=((64, 64),))
    mask = next((tmp_path / "raw" / "stage1_train").glob("*/masks/*.png"))
    from PIL import Image

    Image.fromarray(np.zeros((10, 10), np.uint8)).save(mask)
    with pytest.raises(
        NucsegInputError, match=f"{mask.name}: mask is 10x10 but its image is 64x64"
    ):
        build_version(
            [SourceSpec("a", "kaggle_stage1", tmp_path / "raw" / "stage1_train")], tmp_path / "v"
        )
