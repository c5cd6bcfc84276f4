"""Threshold tuning: the grid search finds what the validation images reward."""

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from nucseg.errors import NucsegInputError
from nucseg.postprocess import PostprocessConfig, read_thresholds
from nucseg.synth import SynthConfig, generate
from nucseg.targets import semantic_target
from nucseg.tuning import balanced_score, grid_search


def _under_confident_maps():
    """Probability maps that are right but never confident (peaks near 0.55)."""
    images = generate(
        SynthConfig(n_images=4, seed=8, shapes=((96, 96),), shape_weights=(1.0,)), "t"
    )
    labels = {str(k): i.instance_labels for k, i in enumerate(images)}
    probs = {
        k: 0.3 + 0.25 * ndi.gaussian_filter(semantic_target(v).astype(np.float32), 1.0)
        for k, v in labels.items()
    }
    return probs, labels


def test_grid_search_moves_thresholds_to_where_the_score_is():
    probs, labels = _under_confident_maps()
    base = PostprocessConfig(mask_threshold=0.5, marker_threshold=0.7, readd_missed=False)
    best, rows = grid_search(
        probs, labels, base, {"mask_threshold": [0.4, 0.5], "marker_threshold": [0.45, 0.7]}
    )
    assert len(rows) == 4
    scores = {(r["mask_threshold"], r["marker_threshold"]): r["dsb"] for r in rows}
    assert scores[(0.5, 0.7)] == 0.0  # nothing exceeds 0.7: no nucleus found
    assert (best.mask_threshold, best.marker_threshold) == max(scores, key=scores.get)
    assert max(scores.values()) > 0.5 and best.min_size == base.min_size


def test_unknown_grid_field_and_bad_thresholds_file_are_named(tmp_path):
    probs, labels = _under_confident_maps()
    with pytest.raises(NucsegInputError, match="postprocess.tune: unknown field 'colour'"):
        grid_search(probs, labels, PostprocessConfig(), {"colour": [1]})
    (tmp_path / "t.json").write_text(json.dumps({"postprocess": {"mask_threshold": 0.4}}))
    assert read_thresholds(tmp_path / "t.json").mask_threshold == 0.4
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(NucsegInputError, match="bad.json: not a thresholds file"):
        read_thresholds(tmp_path / "bad.json")


def test_balanced_score_gives_each_category_the_same_say():
    probs, labels = _under_confident_maps()
    config = PostprocessConfig(marker_threshold=0.45)
    blank = {"0": np.zeros_like(probs["0"])}  # image 0 predicted empty: scores 0
    probs = {**probs, **blank}
    per_image = balanced_score(probs, labels, config)  # one group: plain mean
    groups = {"0": "histology", "1": "fluorescence", "2": "fluorescence", "3": "fluorescence"}
    balanced = balanced_score(probs, labels, config, groups)
    others = balanced_score({k: probs[k] for k in "123"}, labels, config)
    assert per_image == pytest.approx(3 * others / 4) and balanced == pytest.approx(others / 2)
    _, rows = grid_search(probs, labels, config, {"min_size": [12]}, groups)
    assert rows[0]["dsb"] == pytest.approx(balanced, abs=1e-6)  # the search scores that way
