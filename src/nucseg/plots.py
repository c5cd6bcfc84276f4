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
from nucseg.metrics import dsb_score, matched_pairs  # noqa: E402


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
    "predicted": (0, 230, 230),  # any predicted nucleus, when there is no ground truth
}
#: overlays are drawn at least this many pixels on their short side (small images are
#: upscaled by a whole factor) and at most OVERLAY_MAX on their long side (huge ones are
#: cropped to the window holding the most predicted nuclei)
OVERLAY_MIN, OVERLAY_MAX = 384, 768


def outline_overlay(
    image: np.ndarray, truth: np.ndarray | None, prediction: np.ndarray
) -> np.ndarray:
    """``H x W x 3`` uint8: the (first channel of the) normalised image in gray with the
    outlines of predicted nuclei, coloured by :data:`OVERLAY_COLOURS` against ``truth``
    (one neutral "predicted" colour when there is no truth), and of missed true nuclei."""
    gray = image[0] if image.ndim == 3 else image
    rgb = np.repeat((np.clip(gray, 0, 1) * 200).astype(np.uint8)[..., None], 3, axis=2)
    if truth is None:
        edges = find_boundaries(prediction, mode="inner")
        rgb[edges & (prediction > 0)] = OVERLAY_COLOURS["predicted"]
        return rgb
    true_ids, matched_pred, _, _, _ = matched_pairs(truth, prediction)
    missed = np.setdiff1d(np.unique(truth[truth > 0]), true_ids)
    edges = find_boundaries(truth, mode="inner") & np.isin(truth, missed)
    rgb[edges] = OVERLAY_COLOURS["missed"]
    edges = find_boundaries(prediction, mode="inner")
    matched = np.isin(prediction, matched_pred)
    rgb[edges & matched] = OVERLAY_COLOURS["matched"]
    rgb[edges & ~matched & (prediction > 0)] = OVERLAY_COLOURS["false_positive"]
    return rgb


def readable_view(rgb: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """An overlay at a size a person reads: cropped to the ``OVERLAY_MAX``-pixel window with
    the most predicted-nucleus pixels when larger, upscaled by a whole factor (nearest, so
    outlines stay crisp) when its short side is below ``OVERLAY_MIN``."""
    height, width = prediction.shape
    if max(height, width) > OVERLAY_MAX:
        size_r, size_c = min(height, OVERLAY_MAX), min(width, OVERLAY_MAX)
        counts = np.cumsum(np.cumsum(np.pad(prediction > 0, ((1, 0), (1, 0))), 0), 1)
        step = 32
        best, top, left = -1, 0, 0
        for r in range(0, height - size_r + 1, step):
            for c in range(0, width - size_c + 1, step):
                inside = (
                    counts[r + size_r, c + size_c]
                    - counts[r, c + size_c]
                    - counts[r + size_r, c]
                    + counts[r, c]
                )
                if inside > best:
                    best, top, left = inside, r, c
        rgb = rgb[top : top + size_r, left : left + size_c]
    factor = max(1, int(np.ceil(OVERLAY_MIN / min(rgb.shape[:2]))))
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1) if factor > 1 else rgb


def overlay_name(category: str, image_id: str, score: float | None) -> str:
    """``<category>-<dsb0.71 | unscored>-<first 12 characters of the id>.png``."""
    scored = "unscored" if score is None else f"dsb{score:.2f}"
    return f"{category}-{scored}-{image_id[:12]}.png"


def write_overlays(
    instances: dict[str, np.ndarray],
    images: dict[str, np.ndarray],
    truth: dict[str, np.ndarray] | None,
    categories: dict[str, str],
    out_dir: Path | str,
    per_category: int = 2,
) -> list[str]:
    """Write overlays (:func:`outline_overlay`, :func:`readable_view`) of the first
    ``per_category`` image ids (sorted) of every category present, named by
    :func:`overlay_name`; return the ids drawn.  Images without a true nucleus and without a
    predicted one are skipped (nothing to see) while others of their category remain."""
    chosen = []
    for category in sorted(set(categories.values())):
        ids = sorted(i for i in instances if categories.get(i) == category)
        drawable = [
            i
            for i in ids
            if instances[i].max() > 0 or (truth is not None and i in truth and truth[i].max() > 0)
        ]
        chosen += (drawable or ids)[:per_category]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for image_id in chosen:
        image_truth = None if truth is None else truth.get(image_id)
        rgb = outline_overlay(images[image_id], image_truth, instances[image_id])
        score = None if image_truth is None else dsb_score(image_truth, instances[image_id])
        name = overlay_name(categories[image_id], image_id, score)
        with atomic_path(Path(out_dir) / name) as tmp:
            plt.imsave(tmp, readable_view(rgb, instances[image_id]), metadata={"Software": None})
    return chosen
