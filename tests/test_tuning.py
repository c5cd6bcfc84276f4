"""Threshold tuning: the grid search finds what the validation images reward."""

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from nucseg import tuning
from nucseg.errors import NucsegInputError
from nucseg.metrics import balanced_mean, dsb_score
from nucseg.postprocess import PostprocessConfig, instances_from_probability, read_thresholds
from nucseg.synth.nuclei import SynthConfig, generate
from nucseg.targets import semantic_target
from nucseg.tuning import grid_configs, grid_search, image_scores


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
    best, rows, base_score, _ = grid_search(
        probs, labels, base, {"mask_threshold": [0.4, 0.5], "marker_threshold": [0.45, 0.7]}
    )
    assert len(rows) == 4
    scores = {(r["mask_threshold"], r["marker_threshold"]): r["dsb"] for r in rows}
    assert scores[(0.5, 0.7)] == 0.0  # nothing exceeds 0.7: no nucleus found
    assert (best.mask_threshold, best.marker_threshold) == max(scores, key=scores.get)
    assert max(scores.values()) > 0.5 and best.min_size == base.min_size
    assert base_score == scores[(0.5, 0.7)]  # the base config is scored too


def test_grid_search_in_worker_processes_gives_the_same_scores(monkeypatch):
    probs, labels = _under_confident_maps()
    grid = {"mask_threshold": [0.4, 0.5], "marker_threshold": [0.45, 0.6], "split_h": [0, 0.5]}
    alone = grid_search(probs, labels, PostprocessConfig(), grid, threads=1)
    monkeypatch.setattr(tuning, "PARALLEL_MIN_WORK", 1)  # 4 images x 9 sets: use processes
    assert grid_search(probs, labels, PostprocessConfig(), grid, threads=2) == alone


def test_shared_masks_and_seeds_score_like_separate_runs():
    probs, labels = _under_confident_maps()
    configs = [
        PostprocessConfig(
            mask_threshold=m,
            marker_threshold=t,
            split_h=h,
            min_relative_size=r,
            min_mean_probability=c,
        )
        for m in (0.4, 0.5)
        for t in (0.45, 0.5)
        for h in (0.0, 0.5)
        for r in (0.0, 0.5)
        for c in (0.0, 0.7)
    ]
    for image_id, prob in probs.items():
        expected = [
            dsb_score(labels[image_id], instances_from_probability(prob, c)) for c in configs
        ]
        assert image_scores(prob, labels[image_id], configs).tolist() == expected


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
    probs["0"] = np.zeros_like(probs["0"])  # image 0 predicted empty: scores 0
    per_image = {k: float(image_scores(p, labels[k], [config])[0]) for k, p in probs.items()}
    groups = {"0": "histology", "1": "fluorescence", "2": "fluorescence", "3": "fluorescence"}
    others = np.mean([per_image[k] for k in "123"])
    assert balanced_mean(per_image) == pytest.approx(3 * others / 4)  # one group: plain mean
    assert balanced_mean(per_image, groups) == pytest.approx(others / 2)
    _, rows, _, best_scores = grid_search(probs, labels, config, {"min_size": [12]}, groups)
    assert rows[0]["dsb"] == pytest.approx(others / 2, abs=1e-6)  # the search scores that way
    assert best_scores == pytest.approx(per_image, abs=1e-6)


def test_each_acquisition_has_the_same_say_within_its_category():
    """Three plates of one acquisition do not outvote one image of another: given the
    acquisitions, each counts once within its category, and the search scores that way."""
    probs, labels = _under_confident_maps()
    categories = dict.fromkeys(probs, "fluorescence")
    acquisitions = {"0": "plates", "1": "plates", "2": "plates", "3": "other"}
    per_image = {k: np.array([1.0, 0.0]) for k in "012"} | {"3": np.array([0.0, 1.0])}
    assert balanced_mean(per_image, categories) == pytest.approx([0.75, 0.25])
    assert balanced_mean(per_image, categories, acquisitions) == pytest.approx([0.5, 0.5])
    by_category = dict.fromkeys("01", "fluorescence") | dict.fromkeys("23", "histology")
    per_image["2"] = np.array([0.0, 0.0])  # histology: acquisitions "plates" (2), "other" (3)
    assert balanced_mean(per_image, by_category, acquisitions) == pytest.approx([0.5, 0.25])
    config = PostprocessConfig(marker_threshold=0.45)
    grid = {"mask_threshold": [0.3, 0.45]}
    scores = {k: image_scores(p, labels[k], grid_configs(config, grid)) for k, p in probs.items()}
    assert not np.allclose(scores["3"], scores["3"][0])  # the two thresholds differ on it
    expected = (np.mean([scores[k] for k in "012"], axis=0) + scores["3"]) / 2
    _, rows, _, _ = grid_search(probs, labels, config, grid, categories, 1, acquisitions)
    assert [r["dsb"] for r in rows] == pytest.approx(expected, abs=1e-6)


def test_worker_processes_do_not_import_the_calling_script_again(tmp_path):
    """A Snakemake job's __main__ is the rule's script, which runs at import and needs the
    globals Snakemake injects: workers that re-import it (spawn) break the tuning."""
    import subprocess
    import sys

    script = tmp_path / "rule_script.py"
    script.write_text(
        "assert __name__ == '__main__', 're-imported by a worker'\n"
        "import numpy as np\n"
        "from nucseg import tuning\n"
        "from nucseg.postprocess import PostprocessConfig\n"
        "tuning.PARALLEL_MIN_WORK = 1\n"
        "labels = {str(k): np.eye(8, dtype=np.int32) for k in range(3)}\n"
        "probs = {k: v[None].astype(np.float32) for k, v in labels.items()}\n"
        "table = tuning.score_table(probs, labels, [PostprocessConfig(min_size=1)], threads=2)\n"
        "print(sorted(table))\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "['0', '1', '2']"


def test_the_tuned_file_gives_the_score_per_category_and_per_acquisition(tmp_path, monkeypatch):
    from nucseg.io.arrays import save_arrays

    probs, labels = _under_confident_maps()
    probs["0"] = np.zeros_like(probs["0"])  # one image of acquisition a found empty: 0
    monkeypatch.setattr(tuning, "load_validation", lambda fold: (probs, labels))
    save_arrays(tmp_path / "maps.npz", probs)
    config = PostprocessConfig(marker_threshold=0.45)
    result = tuning.tune_thresholds(
        [tmp_path / "maps.npz"],
        None,
        tmp_path / "fold",
        tmp_path / "thresholds.json",
        base=config,
        grid={"min_size": [12]},
        categories={"0": "fluorescence", "1": "fluorescence", "2": "histology", "3": "histology"},
        acquisitions={"0": "a", "1": "a", "2": "b", "3": "c"},
    )
    per_image = {k: float(image_scores(p, labels[k], [config])[0]) for k, p in probs.items()}
    assert json.loads((tmp_path / "thresholds.json").read_text()) == result
    assert result["valid_dsb_by_category"] == {
        "fluorescence": pytest.approx(per_image["1"] / 2, abs=1e-6),
        "histology": pytest.approx((per_image["2"] + per_image["3"]) / 2, abs=1e-6),
    }
    by_acquisition = result["valid_dsb_by_acquisition"]
    assert list(by_acquisition) == ["a", "b", "c"]
    assert by_acquisition["a"] == {"images": 2, "dsb": pytest.approx(per_image["1"] / 2, abs=1e-6)}
    assert by_acquisition["c"]["images"] == 1 and by_acquisition["c"]["dsb"] > 0.3
