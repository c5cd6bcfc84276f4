"""Figures for the report: learning curves (matplotlib, Agg backend: no display needed)
and outline overlays of predictions against the truth."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from skimage.segmentation import find_boundaries  # noqa: E402

from nucseg.io.atomic import atomic_path  # noqa: E402
from nucseg.metrics import matched_pairs  # noqa: E402


def plot_learning_curve(table: pd.DataFrame, path: Path | str) -> None:
    """Two panels from an epoch log (:func:`nucseg.train.log_columns`): training loss per
    head and validation loss; the validation score and learning rate."""
    fig, (losses, score) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for column in [c for c in table.columns if c.startswith("loss_")] + ["train_loss"]:
        losses.plot(table.epoch, table[column], label=column.removeprefix("loss_"))
    losses.plot(table.epoch, table.valid_loss, "k--", label="validation")
    losses.set(xlabel="epoch", ylabel="loss", title="loss")
    losses.legend(fontsize="small")
    (score_column,) = [c for c in table.columns if c.startswith("valid_") and c != "valid_loss"]
    score.plot(table.epoch, table[score_column], "o-", color="tab:green")
    name = score_column.removeprefix("valid_")
    score.set(xlabel="epoch", ylabel=f"validation {name.upper()} score", title="score and LR")
    rate = score.twinx()
    rate.step(table.epoch, table.lr, where="post", color="tab:grey")
    rate.set(ylabel="learning rate", yscale="log")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, metadata={"Software": None})
    plt.close(fig)


OVERLAY_COLOURS = {
    "matched": (255, 220, 0),  # predicted nucleus matched to a true one at IoU > 0.5
    "false_positive": (255, 40, 40),  # predicted nucleus without a match
    "missed": (60, 140, 255),  # true nucleus no prediction matched
}


def outline_overlay(
    image: np.ndarray, truth: np.ndarray | None, prediction: np.ndarray
) -> np.ndarray:
    """``H x W x 3`` uint8: the (first channel of the) normalised image in gray with the
    outlines of predicted nuclei, coloured by :data:`OVERLAY_COLOURS` against ``truth``
    (all "matched" colour when there is no truth), and of missed true nuclei."""
    gray = image[0] if image.ndim == 3 else image
    rgb = np.repeat((np.clip(gray, 0, 1) * 200).astype(np.uint8)[..., None], 3, axis=2)
    if truth is None:
        matched_pred = np.unique(prediction[prediction > 0])
        missed = np.zeros(0, int)
    else:
        true_ids, matched_pred, _, _, _ = matched_pairs(truth, prediction)
        missed = np.setdiff1d(np.unique(truth[truth > 0]), true_ids)
        edges = find_boundaries(truth, mode="inner") & np.isin(truth, missed)
        rgb[edges] = OVERLAY_COLOURS["missed"]
    edges = find_boundaries(prediction, mode="inner")
    matched = np.isin(prediction, matched_pred)
    rgb[edges & matched] = OVERLAY_COLOURS["matched"]
    rgb[edges & ~matched & (prediction > 0)] = OVERLAY_COLOURS["false_positive"]
    return rgb


def write_overlays(
    instances: dict[str, np.ndarray],
    images: dict[str, np.ndarray],
    truth: dict[str, np.ndarray] | None,
    categories: dict[str, str],
    out_dir: Path | str,
    per_category: int = 2,
) -> list[str]:
    """Write ``<out_dir>/<category>-<id>.png`` overlays (:func:`outline_overlay`) of the
    first ``per_category`` image ids (sorted) of each category; return the ids drawn."""
    chosen = []
    for category in sorted(set(categories.values())):
        ids = sorted(i for i in instances if categories.get(i) == category)
        chosen += ids[:per_category]
    for image_id in chosen:
        rgb = outline_overlay(
            images[image_id], None if truth is None else truth.get(image_id), instances[image_id]
        )
        with atomic_path(Path(out_dir) / f"{categories[image_id]}-{image_id}.png") as tmp:
            plt.imsave(tmp, rgb, metadata={"Software": None})
    return chosen
