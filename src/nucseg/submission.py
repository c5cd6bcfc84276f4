"""Kaggle DSB2018 submissions: writing, validating, scoring.

A submission CSV has the header ``ImageId,EncodedPixels`` and one row per nucleus, RLE as in
:mod:`nucseg.rle` (1-based, column-major).  An image without nuclei has one row with empty
EncodedPixels.  Rows are sorted by ImageId, then by nucleus label.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from nucseg.datasets import read_manifest
from nucseg.errors import NucsegInputError
from nucseg.io.arrays import load_arrays
from nucseg.io.atomic import atomic_path
from nucseg.io.kaggle import read_csv_columns, read_solutions
from nucseg.io.tables import write_table
from nucseg.metrics import SCORE_COLUMNS, instance_scores
from nucseg.rle import decode_labels, encode_labels

log = logging.getLogger(__name__)


def write_submission(instances: dict[str, np.ndarray], path: Path | str) -> None:
    """Write a submission for ``{image_id: instance_labels}`` atomically."""
    write_encoded_submission({i: encode_labels(labels) for i, labels in instances.items()}, path)


def write_encoded_submission(encodings: dict[str, dict[int, str]], path: Path | str) -> None:
    """Write a submission for ``{image_id: {label: rle}}`` (:func:`nucseg.rle.encode_labels`
    of each image, so a stream of images need not stay in memory) atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["ImageId", "EncodedPixels"])
        for image_id in sorted(encodings):
            for rle in list(encodings[image_id].values()) or [""]:
                writer.writerow([image_id, rle])


def read_submission(path: Path | str, shapes: dict[str, tuple[int, int]]) -> dict[str, np.ndarray]:
    """Read and validate a submission against the test images' ``shapes``.

    Checks the Kaggle rules: header, every test image present and no other, each encoding
    valid (sorted positive pairs, in bounds), no two nuclei of an image overlapping.  Returns
    ``{image_id: instance_labels}``.
    """
    path = Path(path)
    table = read_csv_columns(path, ["ImageId", "EncodedPixels"])
    present = set(table["ImageId"])
    missing = sorted(set(shapes) - present)
    if missing:
        raise NucsegInputError(f"{path}: {len(missing)} test image(s) missing, e.g. {missing[0]}")
    unknown = sorted(present - set(shapes))
    if unknown:
        raise NucsegInputError(
            f"{path}: {len(unknown)} image id(s) not in the test set, e.g. {unknown[0]}"
        )
    return {
        str(image_id): decode_labels(
            rows["EncodedPixels"].tolist(), shapes[image_id], where=f"{path} (image {image_id})"
        )
        for image_id, rows in table.groupby("ImageId", sort=True)
    }


def score_images(
    truth: dict[str, np.ndarray],
    predicted: dict[str, np.ndarray],
    categories: dict[str, str] | None = None,
    sources: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Per-image scores (:func:`nucseg.metrics.instance_scores`): nucleus counts, DSB score,
    AP at IoU 0.5 and 0.75, F1 at 0.5, panoptic quality; one row per image of ``truth``,
    with its test set (``source``) and category."""
    rows = [
        {
            "image_id": image_id,
            "source": (sources or {}).get(image_id, "test"),
            "category": (categories or {}).get(image_id, "unknown"),
            **instance_scores(truth[image_id], predicted[image_id]),
        }
        for image_id in sorted(truth)
    ]
    return pd.DataFrame(rows, columns=["image_id", "source", "category", *SCORE_COLUMNS]).round(6)


def summarize_scores(per_image: pd.DataFrame) -> pd.DataFrame:
    """Mean scores as ``image_id='mean'`` rows: overall (``source='all'``,
    ``category='all'``), per category, and, when images come from several test sets, per
    source and per source and category; nucleus counts are summed."""
    groups = [("all", "all", per_image)]
    groups += [("all", c, g) for c, g in per_image.groupby("category", sort=True)]
    if per_image["source"].nunique() > 1:
        for source, group in per_image.groupby("source", sort=True):
            groups.append((source, "all", group))
            groups += [(source, c, g) for c, g in group.groupby("category", sort=True)]
    rows = []
    for source, category, group in groups:
        row = {"image_id": "mean", "source": source, "category": category}
        for column in SCORE_COLUMNS:
            values = group[column]
            row[column] = int(values.sum()) if column.startswith("n_") else float(values.mean())
        rows.append(row)
    return pd.DataFrame(rows, columns=per_image.columns).round(6)


def write_submission_from_shards(
    shard_paths: list[str], manifest_path: Path | str, out_path: Path | str
) -> None:
    """Merge instance shards into one submission, then validate it by decoding it back."""

    manifest = read_manifest(manifest_path)
    shapes = {r.id: (int(r.height), int(r.width)) for r in manifest.itertuples()}
    instances: dict[str, np.ndarray] = {}
    for path in shard_paths:
        instances.update(load_arrays(path))
    write_submission(instances, out_path)
    decoded = read_submission(out_path, shapes)
    for image_id, labels in instances.items():
        if not np.array_equal(decoded[image_id] > 0, labels > 0):
            Path(out_path).unlink()
            raise RuntimeError(f"submission round trip changed image {image_id}")


def score_submissions(
    submissions: dict[str, str],
    solution_paths: list[Path | str],
    manifest_path: Path | str,
    out_path: Path | str,
) -> pd.DataFrame:
    """Score each named submission against the union of the solution CSVs (test images
    without a solution are not scored): per-image rows, then mean rows overall, per
    category and per test set (:func:`summarize_scores`)."""

    truth = read_solutions(solution_paths)
    manifest = read_manifest(manifest_path).set_index("id")
    categories = manifest["category"].to_dict()
    sources = manifest["source"].to_dict() if "source" in manifest else None
    shapes = {image_id: labels.shape for image_id, labels in truth.items()}
    tables = []
    for name, path in submissions.items():
        predicted = read_submission(path, {**_manifest_shapes(manifest), **shapes})
        per_image = score_images(truth, predicted, categories, sources)
        table = pd.concat([per_image, summarize_scores(per_image)], ignore_index=True)
        table.insert(0, "ensemble", name)
        tables.append(table)
        overall = table[(table.image_id == "mean") & (table.source == "all")]
        overall = overall[overall.category == "all"].dsb.iloc[0]
        log.info("%s: mean DSB score %.4f over %d images", name, overall, len(per_image))
    scores = pd.concat(tables, ignore_index=True)
    write_table(scores, out_path)
    return scores


def _manifest_shapes(manifest: pd.DataFrame) -> dict[str, tuple[int, int]]:
    return {i: (int(r.height), int(r.width)) for i, r in manifest.iterrows()}
