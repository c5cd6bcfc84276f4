"""Post-processing thresholds tuned on a validation fold.

Each model predicts the validation images of a materialised fold once
(:func:`nucseg.prediction_jobs.predict_validation`, rule ``predict_validation``); a model or
ensemble averages its members' maps as at test time and a grid search over
:class:`PostprocessConfig` fields picks the combination with the highest DSB score,
averaged per acquisition first, then per category, then over categories (so 16 crops of one
histology tile do not outvote 6 fluorescence images: on the demo the plain mean chose
thresholds that raised the validation score and lowered the test score of a UNet from 0.77
to 0.69; and 27 plates of one fluorescence acquisition do not outvote 3 of another: on the
shipped dsb36's fold the per-category mean kept a mask threshold of 0.6 where the
acquisitions weighted equally chose 0.5, nearer what every set of acquisitions it never saw
prefers, 0.4 to 0.5).  The result is a JSON file that instance separation reads at test
time.

The search does no work twice: per image, the foreground mask is computed once per
``mask_threshold`` and the seeds once per ``(marker_threshold, split_h)``; only the
growth and the score run per grid point; images are spread over ``threads`` processes.
"""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from nucseg.datasets import fold_side_ids, load_normalized
from nucseg.ensemble import weighted_mean
from nucseg.errors import NucsegInputError
from nucseg.io.arrays import load_arrays
from nucseg.io.atomic import atomic_path
from nucseg.io.images import read_tiff
from nucseg.metrics import balanced_mean, dsb_score, grouped
from nucseg.postprocess import (
    OBJECT_FILTERS,
    PostprocessConfig,
    core_probability,
    filter_objects,
    foreground_mask,
    grown_labels,
    markers_from_probability,
)

log = logging.getLogger(__name__)

#: image x threshold-set evaluations below which tuning stays in one process
PARALLEL_MIN_WORK = 200

DEFAULT_GRID = {
    "mask_threshold": [0.3, 0.4, 0.5, 0.6],
    "marker_threshold": [0.4, 0.5, 0.6, 0.7, 0.8],
    "split_h": [0.0, 0.25, 0.5, 1.0],
}


def load_validation(fold_dir: Path | str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Normalised images and instance labels of the validation side of a fold."""
    fold_dir = Path(fold_dir)
    ids = fold_side_ids(fold_dir, "valid")
    if not ids:
        raise NucsegInputError(f"{fold_dir}: the fold has no validation image to tune on")
    images = load_normalized(fold_dir / "valid" / "normalized", ids)
    labels = {i: read_tiff(fold_dir / "valid" / "labels" / f"{i}.tif") for i in ids}
    return images, labels


def image_scores(
    prob: np.ndarray, truth: np.ndarray, configs: list[PostprocessConfig]
) -> np.ndarray:
    """The DSB score of one image's instances under each of ``configs``: masks computed
    once per ``mask_threshold``, seeds once per ``(marker_threshold, split_h)``, the growth
    once per setting other than the object filters."""
    probs = prob[None] if prob.ndim == 2 else prob.astype(np.float32)
    core = core_probability(probs)
    masks: dict[float, np.ndarray] = {}
    scores = np.empty(len(configs))
    seed_key, seeds, grown = None, None, {}
    # visit configs grouped by their seeds, so one set of seeds is held at a time
    order = sorted(range(len(configs)), key=lambda k: _seed_key(configs[k]))
    for index in order:
        config = configs[index]
        if config.mask_threshold not in masks:
            masks[config.mask_threshold] = foreground_mask(probs, config)
        if _seed_key(config) != seed_key:
            seed_key, seeds, grown = _seed_key(config), markers_from_probability(core, config), {}
        growth = replace(config, **dict.fromkeys(OBJECT_FILTERS, 0))
        if growth not in grown:
            grown[growth] = grown_labels(probs, masks[config.mask_threshold], *seeds, config)
        scores[index] = dsb_score(truth, filter_objects(grown[growth], probs[0], config))
    return scores


def _seed_key(config: PostprocessConfig) -> tuple[float, float]:
    return (config.marker_threshold, config.split_h)


def _image_scores_job(job: tuple) -> np.ndarray:
    return image_scores(*job)


def score_table(
    probs: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    configs: list[PostprocessConfig],
    threads: int = 1,
) -> dict[str, np.ndarray]:
    """Per image id, the DSB score under each of ``configs`` (:func:`image_scores`), images
    spread over ``threads`` worker processes when there are at least ``PARALLEL_MIN_WORK``
    evaluations; progress is logged."""
    ids = sorted(probs)
    jobs = ((probs[i], labels[i], configs) for i in ids)
    start, table = time.perf_counter(), {}
    # worker processes cost ~2 s to start: worth it only for real work
    if threads > 1 and len(ids) > 1 and len(ids) * len(configs) >= PARALLEL_MIN_WORK:
        # fork: spawned workers re-import the parent's __main__, which in a Snakemake job is
        # the rule's script (it needs Snakemake's injected globals). The workers run numpy,
        # scipy and scikit-image only, none of which forks OpenMP state badly.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with ProcessPoolExecutor(threads, mp_context=context) as pool:
            results = pool.map(_image_scores_job, jobs)
            table = _collect(ids, results, len(configs), start)
    else:
        table = _collect(ids, map(_image_scores_job, jobs), len(configs), start)
    return table


def _collect(ids, results, n_configs: int, start: float) -> dict[str, np.ndarray]:
    table = {}
    for done, (image_id, scores) in enumerate(zip(ids, results, strict=True), start=1):
        table[image_id] = scores
        if done % max(1, len(ids) // 10) == 0 or done == len(ids):
            log.info(
                "scored %d/%d validation images x %d threshold sets in %.1f s",
                done,
                len(ids),
                n_configs,
                time.perf_counter() - start,
            )
    return table


def grid_configs(base: PostprocessConfig, grid: dict[str, list]) -> list[PostprocessConfig]:
    """Every combination of ``grid`` values (fields of ``base``), in grid order."""
    unknown = set(grid) - set(asdict(base))
    if unknown:
        raise NucsegInputError(f"postprocess.tune: unknown field {sorted(unknown)[0]!r}")
    names = list(grid)
    return [
        replace(base, **dict(zip(names, values, strict=True)))
        for values in itertools.product(*(grid[n] for n in names))
    ]


def grid_search(
    probs: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    base: PostprocessConfig,
    grid: dict[str, list],
    categories: dict[str, str] | None = None,
    threads: int = 1,
    acquisitions: dict[str, str] | None = None,
) -> tuple[PostprocessConfig, list[dict], float, dict[str, float]]:
    """The combination of ``grid`` values with the best balanced score (per acquisition,
    category, then over categories: :func:`nucseg.metrics.balanced_mean`; ties: the first
    in grid order); returns it, one row per combination, the score of ``base`` itself and
    the best combination's score per image."""
    configs = grid_configs(base, grid)
    table = score_table(probs, labels, [base, *configs], threads)
    means = balanced_mean(table, categories, acquisitions)
    base_score, grid_scores = float(means[0]), means[1:]
    best = int(np.argmax(grid_scores))  # first maximum: grid order breaks ties
    rows = [
        {name: getattr(config, name) for name in grid} | {"dsb": round(float(score), 6)}
        for config, score in zip(configs, grid_scores, strict=True)
    ]
    per_image = {image_id: float(scores[1 + best]) for image_id, scores in table.items()}
    return configs[best], rows, base_score, per_image


def tune_thresholds(
    member_maps: list[Path | str],
    weights: list[float] | None,
    fold_dir: Path | str,
    out_path: Path | str,
    *,
    base: PostprocessConfig,
    grid: dict[str, list] | None = None,
    categories: dict[str, str] | None = None,
    acquisitions: dict[str, str] | None = None,
    vote: bool = False,
    threads: int = 1,
) -> dict:
    """Tune the post-processing of one model or ensemble on a fold's validation images
    from its members' validation maps (:func:`nucseg.prediction_jobs.predict_validation`) and
    write :func:`tuned_thresholds`' result (with the fold) as JSON to ``out_path``."""
    _, labels = load_validation(fold_dir)
    probs = weighted_mean([load_arrays(p) for p in member_maps], weights, vote)
    if sorted(probs) != sorted(labels):
        raise NucsegInputError(
            f"{member_maps[0]}: its validation maps are not of the images of {fold_dir}"
        )
    result = tuned_thresholds(
        probs, labels, base, grid, categories, acquisitions, threads, str(fold_dir)
    )
    with atomic_path(out_path) as tmp:
        tmp.write_text(json.dumps(result, indent=1) + "\n")
    return result


def tuned_thresholds(
    probs: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    base: PostprocessConfig,
    grid: dict[str, list] | None = None,
    categories: dict[str, str] | None = None,
    acquisitions: dict[str, str] | None = None,
    threads: int = 1,
    fold: str = "",
) -> dict:
    """The grid search's choice (:func:`grid_search`) as a thresholds file holds it:
    ``{"postprocess": {...}, "valid_dsb_default": s0, "valid_dsb_tuned": s1, ...}``, the
    scores balanced (:func:`nucseg.metrics.balanced_mean`), the tuned score per category
    and, with ``acquisitions`` (image id -> acquisition), per acquisition with its image
    count: a fold of whole acquisitions can be dominated by one.  ``fold``: where the
    images came from."""
    best, rows, default, per_image = grid_search(
        probs, labels, base, grid or DEFAULT_GRID, categories, threads, acquisitions
    )
    tuned = max(r["dsb"] for r in rows)
    per_category = grouped(per_image, categories)
    result = {
        "postprocess": asdict(best),
        "valid_dsb_default": round(default, 6),
        "valid_dsb_tuned": round(tuned, 6),
        "valid_dsb_by_category": {k: round(float(np.mean(v)), 6) for k, v in per_category.items()},
        "n_images": len(probs),
        "fold": fold,
        "grid": rows,
    }
    if acquisitions:
        result["valid_dsb_by_acquisition"] = {
            name: {"images": len(v), "dsb": round(float(np.mean(v)), 6)}
            for name, v in grouped(per_image, acquisitions).items()
        }
    log.info(
        "validation DSB %.4f with config thresholds, %.4f tuned (%s) on %d images",
        default,
        tuned,
        asdict(best),
        len(probs),
    )
    return result


def write_fixed_thresholds(fixed: dict, base: PostprocessConfig, out_path: Path | str) -> dict:
    """Write the thresholds file of a model whose thresholds are fixed rather than tuned
    (config ``models.<name>.thresholds``: ``postprocess`` settings over ``base`` and the
    ``evidence`` of where they were tuned): ``{"postprocess": {...}, "fixed": true,
    "evidence": "..."}``, without the validation scores a tuning writes."""
    unknown = sorted(set(fixed["postprocess"]) - set(asdict(base)))
    if unknown:
        raise NucsegInputError(f"thresholds: unknown post-processing settings {unknown}")
    result = {
        "postprocess": asdict(replace(base, **fixed["postprocess"])),
        "fixed": True,
        "evidence": fixed.get("evidence", ""),
    }
    with atomic_path(out_path) as tmp:
        tmp.write_text(json.dumps(result, indent=1) + "\n")
    return result


def validation_table(thresholds_paths: dict[str, Path | str]) -> pd.DataFrame:
    """One row per entry (model or ensemble) and category of the validation DSB score with
    its tuned thresholds, plus a ``balanced`` row (the mean over categories, which tuning
    maximised), read from each entry's thresholds file."""
    rows = []
    for entry, path in thresholds_paths.items():
        tuned = json.loads(Path(path).read_text())
        for category, score in tuned.get("valid_dsb_by_category", {}).items():
            rows.append({"entry": entry, "category": category, "valid_dsb": score})
        if "valid_dsb_tuned" in tuned:  # not for thresholds fixed in the config
            rows.append(
                {"entry": entry, "category": "balanced", "valid_dsb": tuned["valid_dsb_tuned"]}
            )
    return pd.DataFrame(rows, columns=["entry", "category", "valid_dsb"])
