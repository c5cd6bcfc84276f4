import numpy as np
import pandas as pd
import pytest
from helpers import build_version

from nucseg.datasets import SourceSpec
from nucseg.errors import NucsegInputError
from nucseg.selection import RowSelector, balance_weights
from nucseg.synth.nuclei import write_demo_sources


def test_selector_rows_match_on_all_their_non_empty_cells(tmp_path):
    (tmp_path / "s.csv").write_text("source,category\ndsb,histology\n,brightfield\n")
    selector = RowSelector(tmp_path / "s.csv")
    assert selector.matches({"id": "a", "source": "dsb", "origin": "a", "category": "histology"})
    assert selector.matches({"id": "b", "source": "tcga", "origin": "b", "category": "brightfield"})
    assert not selector.matches(
        {"id": "c", "source": "tcga", "origin": "c", "category": "histology"}
    )


def test_selector_with_unknown_column_is_named(tmp_path):
    (tmp_path / "s.csv").write_text("colour\nblue\n")
    with pytest.raises(NucsegInputError, match=r"s\.csv: column\(s\) \['colour'\] unknown"):
        RowSelector(tmp_path / "s.csv")


def test_balance_gives_each_group_equal_total_weight():
    manifest = pd.DataFrame({"category": ["a"] * 6 + ["b"] * 2})
    weights = balance_weights(manifest, "category")
    assert np.isclose(weights[:6].sum(), weights[6:].sum()) and np.isclose(weights.mean(), 1)
    assert (balance_weights(manifest, None) == 1).all()


def test_balance_by_pixels_gives_each_group_an_equal_share_of_crops():
    # two large images of group b must not outweigh ten small ones of group a
    manifest = pd.DataFrame({"category": ["a"] * 10 + ["b"] * 2})
    pixels = np.array([256 * 256] * 10 + [1040 * 1388] * 2, float)
    crop_mass = balance_weights(manifest, "category", pixels) * pixels
    assert np.isclose(crop_mass[:10].sum(), crop_mass[10:].sum())
    assert np.allclose(crop_mass[:10], crop_mass[0])  # uniform over pixels within a group


def test_balance_shares_set_each_groups_share_of_crops():
    manifest = pd.DataFrame({"category": ["a"] * 10 + ["b"] * 2 + ["c"] * 3})
    pixels = np.array([256 * 256] * 10 + [1040 * 1388] * 2 + [1000 * 1000] * 3, float)
    crop_mass = balance_weights(manifest, "category", pixels, {"c": 2.0}) * pixels
    totals = pd.Series(crop_mass).groupby(manifest.category).sum() / crop_mass.sum()
    np.testing.assert_allclose(totals[["a", "b", "c"]], [0.25, 0.25, 0.5])


@pytest.mark.parametrize(
    "column, shares, message",
    [
        ("category", {"histolgy": 2.0}, r"no image has category \['histolgy'\]"),
        ("category", {"a": 0.0}, "must be positive"),
        (None, {"a": 2.0}, "need a balance column"),
    ],
)
def test_bad_balance_shares_are_named(column, shares, message):
    manifest = pd.DataFrame({"category": ["a", "b"]})
    with pytest.raises(NucsegInputError, match=message):
        balance_weights(manifest, column, None, shares)


def test_assembly_applies_include_exclude_and_balance(tmp_path):
    write_demo_sources(tmp_path / "raw", n_train=4, n_test=1, seed=2, shapes=((48, 48),))
    source = [SourceSpec("s", "kaggle_stage1", tmp_path / "raw" / "stage1_train")]
    everything = build_version(source, tmp_path / "all", balance="category")
    crop_mass = everything.sampling_weight * everything.height * everything.width
    totals = crop_mass.groupby(everything.category).sum()
    np.testing.assert_allclose(totals, totals.iloc[0], rtol=1e-4)
    chosen = everything.id.iloc[:2].tolist()
    (tmp_path / "keep.csv").write_text("id\n" + "\n".join(chosen) + "\n")
    (tmp_path / "drop.csv").write_text(f"id\n{chosen[0]}\n")
    subset = build_version(
        source, tmp_path / "sub", include=tmp_path / "keep.csv", exclude=tmp_path / "drop.csv"
    )
    assert subset.id.tolist() == [chosen[1]]
    assert sorted(p.stem for p in (tmp_path / "sub" / "images").iterdir()) == [chosen[1]]
