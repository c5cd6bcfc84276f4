"""A model on annotated images from elsewhere: sets that are never trained on.

A validation fold tells how a model does on images like its training images; what users
bring comes from other microscopes.  Evaluation sets (config ``evaluation:``) are annotated
sources in any reader format (:mod:`nucseg.io.sources`) that no dataset version draws from,
scored the way ``nucseg predict`` runs the model: each image normalised as the checkpoint
records, predicted with the model's prediction settings, separated with its thresholds.
``camera: true`` first turns a set's 8-bit images into the frames a 16-bit camera would
record (:func:`nucseg.synth.nuclei.camera_frame`), a check of bit-depth-true normalisation.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nucseg.io.images import read_image
from nucseg.io.sources import SourceOptions, list_source
from nucseg.metrics import SCORE_COLUMNS, instance_scores
from nucseg.models import SegmentationNet
from nucseg.normalize import NormalizeConfig, normalize_image
from nucseg.postprocess import PostprocessConfig, instances_from_probability
from nucseg.predict import (
    PredictConfig,
    load_for_prediction,
    predict_probability,
    settle_reading,
)
from nucseg.synth.nuclei import camera_frame


@dataclass(frozen=True)
class EvaluationSet:
    """An annotated source scored but never trained on (config ``evaluation.<name>``)."""

    name: str
    format: str
    path: Path
    camera: bool = False  # as a 16-bit camera would record the (8-bit) images
    labels_csv: Path | None = None  # kaggle_stage1: nuclei from an ImageId,EncodedPixels CSV

    @classmethod
    def from_config(cls, name: str, spec: dict) -> EvaluationSet:
        labels_csv = spec.get("labels_csv")
        return cls(
            name,
            spec["format"],
            Path(spec["path"]),
            bool(spec.get("camera", False)),
            Path(labels_csv) if labels_csv else None,
        )

    def images(self, keep=lambda image_id: True) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """``(id, image, labels)`` of every image whose id ``keep`` accepts, read one at a
        time (camera frames seeded per set)."""
        rng = np.random.default_rng(0)
        options = SourceOptions(labels_csv=self.labels_csv)
        for item in list_source(self.format, self.path, options):
            if not keep(item.image_id):
                continue
            image = read_image(item.image_path)
            labels = item.read_labels(image.shape[:2])
            yield item.image_id, camera_frame(image, rng) if self.camera else image, labels


def evaluate_model(
    model_path: Path | str,
    thresholds: PostprocessConfig,
    sets: list[EvaluationSet],
    predict: PredictConfig = PredictConfig(),
    *,
    threads: int = 1,
    device: str = "auto",
) -> pd.DataFrame:
    """One row per image of every set: ``set``, ``id``, ``category`` (as detected), the
    scores of :data:`nucseg.metrics.SCORE_COLUMNS` and the ``seconds`` of prediction and
    separation.  The network is loaded once; camera frames are seeded per set."""
    model, normalize, torch_device, predict = load_for_prediction(
        model_path, predict, threads, device
    )
    images = {s.name: s.images() for s in sets}
    return score_images(model, normalize, thresholds, images, predict, torch_device)


def score_images(
    model: SegmentationNet,
    normalize: NormalizeConfig,
    thresholds: PostprocessConfig,
    images: dict[str, Iterable[tuple[str, np.ndarray, np.ndarray]]],
    predict: PredictConfig,
    device: torch.device,
    predictor=predict_probability,
) -> pd.DataFrame:
    """The rows of :func:`evaluate_model` for ``{set: (id, image, labels) ...}`` and a
    loaded network, or a list of them that ``predictor`` averages (its first settles
    how the image is read: :func:`nucseg.predict.settle_reading`).  ``predictor``: how maps are
    computed, called as :func:`nucseg.predict.predict_probability` with the image's
    category; benchmarks compare others."""
    rows = []
    for name, items in images.items():
        for image_id, image, labels in items:
            start = time.perf_counter()
            normalized = normalize_image(image, normalize)
            network = model[0] if isinstance(model, list) else model  # an ensemble's first
            pixels, category = settle_reading(
                network, image, normalized, normalize, device, predict
            )
            prob = predictor(model, pixels, device, predict, category)
            found = instances_from_probability(prob, thresholds)
            seconds = time.perf_counter() - start
            rows.append(
                {"set": name, "id": image_id, "category": category}
                | instance_scores(labels, found)
                | {"seconds": round(seconds, 3)}
            )
    return pd.DataFrame(rows, columns=["set", "id", "category", *SCORE_COLUMNS, "seconds"])


def summarize_evaluation(per_image: pd.DataFrame) -> pd.DataFrame:
    """Per set and detected category: image count, nuclei true and found (sums), the mean
    of every score and the seconds per image."""
    scores = [c for c in SCORE_COLUMNS if c not in ("n_true", "n_pred")]
    table = per_image.groupby(["set", "category"], sort=False).agg(
        images=("id", "size"),
        n_true=("n_true", "sum"),
        n_pred=("n_pred", "sum"),
        **{column: (column, "mean") for column in scores},
        seconds_per_image=("seconds", "mean"),
    )
    return table.reset_index().round(4)
