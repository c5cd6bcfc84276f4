"""Instance segmentation metrics, as scored in the Kaggle 2018 Data Science Bowl.

DSB score of one image: the mean over IoU thresholds ``t = 0.50, 0.55, ..., 0.95`` of
``TP(t) / (TP(t) + FP(t) + FN(t))``, where a predicted nucleus matches a true one when their
IoU is **strictly greater** than ``t``.  Because ``t >= 0.5``, each object matches at most one
other, so no assignment problem is needed.  Convention: an image with no true and no predicted
nuclei scores 1.0 at every threshold.  The data set score is the mean over images; a
validation fold of several kinds is scored balanced (:func:`balanced_mean`: per acquisition,
then per category, then over categories), as tuning and training's best epoch choose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DSB_THRESHOLDS = np.round(np.arange(0.5, 1.0, 0.05), 2)


def matched_pairs(
    true_labels: np.ndarray, pred_labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """``(true ids, predicted ids, IoUs)`` of the nucleus pairs with IoU above 0.5, and the
    numbers of true and predicted nuclei.  Ids are the label values of the inputs.

    Labels need not be consecutive.  One ``bincount`` of pair keys over the pixels gives
    the joint table (areas are its margins); when the label values are so large that the
    table would outgrow the image, the pairs are counted sparsely instead.  Above 0.5 each
    nucleus has at most one partner, so no assignment is needed.
    """
    if true_labels.shape != pred_labels.shape:
        raise ValueError(f"shape mismatch: {true_labels.shape} vs {pred_labels.shape}")
    flat_true, flat_pred = true_labels.ravel(), pred_labels.ravel()
    rows, cols = int(flat_true.max(initial=0)) + 1, int(flat_pred.max(initial=0)) + 1
    if rows * cols <= 4 * flat_true.size + 4096:
        key_type = np.int32 if rows * cols < 2**31 else np.int64  # int32: half the traffic
        flat_true = flat_true.astype(key_type, copy=False)
        flat_pred = flat_pred.astype(key_type, copy=False)
        joint = np.bincount(flat_true * cols + flat_pred, minlength=rows * cols)
        joint = joint.reshape(rows, cols)
        area_true, area_pred = joint.sum(axis=1), joint.sum(axis=0)
        true_id, pred_id = np.nonzero(joint[1:, 1:])
        true_id, pred_id = true_id + 1, pred_id + 1
        intersection = joint[true_id, pred_id]
    else:  # sparse huge ids: count only the pixels inside both
        true_values = np.union1d([0], flat_true)  # with 0 first, so 0 maps to 0
        pred_values = np.union1d([0], flat_pred)
        flat_true = np.searchsorted(true_values, flat_true)
        flat_pred = np.searchsorted(pred_values, flat_pred)
        area_true, area_pred = np.bincount(flat_true), np.bincount(flat_pred)
        both = (flat_true > 0) & (flat_pred > 0)
        keys, intersection = np.unique(
            flat_true[both] * area_pred.size + flat_pred[both], return_counts=True
        )
        true_id, pred_id = np.divmod(keys, area_pred.size)
    iou = intersection / (area_true[true_id] + area_pred[pred_id] - intersection)
    n_true = int(np.count_nonzero(area_true[1:]))
    n_pred = int(np.count_nonzero(area_pred[1:]))
    keep = iou > 0.5
    true_id, pred_id = true_id[keep], pred_id[keep]
    if rows * cols > 4 * true_labels.size + 4096:  # back to the original label values
        true_id, pred_id = true_values[true_id], pred_values[pred_id]
    return true_id, pred_id, iou[keep], n_true, n_pred


def matched_ious(true_labels: np.ndarray, pred_labels: np.ndarray) -> tuple[np.ndarray, int, int]:
    """IoUs of the (true, predicted) nucleus pairs with IoU above 0.5, and the numbers of
    true and predicted nuclei (see :func:`matched_pairs`)."""
    _, _, ious, n_true, n_pred = matched_pairs(true_labels, pred_labels)
    return ious, n_true, n_pred


@dataclass(frozen=True)
class MatchCounts:
    """True positives, false positives and false negatives at each threshold."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

    @classmethod
    def from_ious(
        cls, ious: np.ndarray, n_true: int, n_pred: int, thresholds: np.ndarray
    ) -> MatchCounts:
        """Counts from the IoUs of the matched pairs (:func:`matched_pairs`, all > 0.5)."""
        tp = (ious[None, :] > thresholds[:, None]).sum(axis=1)
        return cls(thresholds, tp, n_pred - tp, n_true - tp)

    @property
    def precision_dsb(self) -> np.ndarray:
        """``TP / (TP + FP + FN)`` per threshold (1.0 where all three are zero)."""
        denominator = self.tp + self.fp + self.fn
        return np.where(denominator > 0, self.tp / np.maximum(denominator, 1), 1.0)


def match_counts(
    true_labels: np.ndarray, pred_labels: np.ndarray, thresholds: np.ndarray = DSB_THRESHOLDS
) -> MatchCounts:
    """Count matches (IoU strictly above each threshold, thresholds >= 0.5)."""
    thresholds = np.asarray(thresholds, dtype=float)
    if (thresholds < 0.5).any():
        raise ValueError("thresholds below 0.5 need an assignment step; not supported")
    return MatchCounts.from_ious(*matched_ious(true_labels, pred_labels), thresholds)


def dsb_score(true_labels: np.ndarray, pred_labels: np.ndarray) -> float:
    """DSB score of one image (see the module docstring for the exact definition)."""
    return float(match_counts(true_labels, pred_labels).precision_dsb.mean())


_AT_075 = int(np.flatnonzero(DSB_THRESHOLDS == 0.75)[0])
SCORE_COLUMNS = ["n_true", "n_pred", "dsb", "ap50", "ap75", "f1_50", "pq"]


def instance_scores(true_labels: np.ndarray, pred_labels: np.ndarray) -> dict[str, float]:
    """Every per-image score of :data:`SCORE_COLUMNS`.

    ``dsb``: the competition score; ``ap50``/``ap75``: its ``TP / (TP + FP + FN)`` at IoU
    above 0.5 / 0.75; ``f1_50``: ``2 TP / (2 TP + FP + FN)`` at 0.5; ``pq``: panoptic
    quality (Kirillov et al. 2019), the summed IoU of the pairs matched above 0.5 over
    ``TP + FP/2 + FN/2``.  Empty truth and empty prediction score 1 everywhere.
    """
    ious, n_true, n_pred = matched_ious(true_labels, pred_labels)
    counts = MatchCounts.from_ious(ious, n_true, n_pred, DSB_THRESHOLDS)
    precision = counts.precision_dsb
    half = counts.tp[0] + (counts.fp[0] + counts.fn[0]) / 2
    return {
        "n_true": n_true,
        "n_pred": n_pred,
        "dsb": float(precision.mean()),
        "ap50": float(precision[0]),
        "ap75": float(precision[_AT_075]),
        "f1_50": float(counts.tp[0] / half) if half else 1.0,
        "pq": float(ious.sum() / half) if half else 1.0,
    }


def dice(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Dice coefficient of two boolean masks; 1 when both are empty (the rule of the Kaggle
    2016 nerve competition)."""
    total = int(truth.sum()) + int(predicted.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(truth, predicted).sum()) / total


def class_scores(
    truth: np.ndarray, predicted: np.ndarray, classes: tuple[str, ...]
) -> pd.DataFrame:
    """Per-class Dice and IoU over all pixels of the given class maps (any shape, values
    indexing ``classes``), plus the pixel counts; a class absent from both scores NaN. A
    final ``mean`` row averages the classes."""
    n_classes = len(classes)
    truth, predicted = np.asarray(truth).ravel(), np.asarray(predicted).ravel()
    pairs = np.bincount(truth.astype(np.int64) * n_classes + predicted, minlength=n_classes**2)
    confusion = pairs.reshape(n_classes, n_classes)
    intersection = np.diag(confusion).astype(float)
    true_count, predicted_count = confusion.sum(1), confusion.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = 2 * intersection / (true_count + predicted_count)
        iou = intersection / (true_count + predicted_count - intersection)
    table = pd.DataFrame(
        {
            "class": list(classes),
            "dice": dice,
            "iou": iou,
            "true_pixels": true_count,
            "predicted_pixels": predicted_count,
        }
    )
    mean = {
        "class": "mean",
        "dice": np.nanmean(dice),
        "iou": np.nanmean(iou),
        "true_pixels": true_count.sum(),
        "predicted_pixels": predicted_count.sum(),
    }
    return pd.concat([table, pd.DataFrame([mean])], ignore_index=True).round(5)


def grouped(scores: dict, groups: dict[str, str] | None = None) -> dict[str, list]:
    """Per-image scores by group (``groups``: image id -> group; one group ``all``
    without), the groups in sorted order."""
    by_group: dict[str, list] = {}
    for image_id, score in scores.items():
        by_group.setdefault((groups or {}).get(image_id, "all"), []).append(score)
    return dict(sorted(by_group.items()))


def balanced_mean(
    scores: dict[str, float] | dict[str, np.ndarray],
    categories: dict[str, str] | None = None,
    acquisitions: dict[str, str] | None = None,
):
    """Mean over categories of the mean over their acquisitions of the mean score of those
    acquisitions' images (one category without ``categories``; every image its own
    acquisition without ``acquisitions``, i.e. the mean of the category's images); works on
    per-image floats and on per-image score vectors alike."""
    acquisition_of = {i: (acquisitions or {}).get(i, i) for i in scores}
    category_means = []
    for ids in grouped({i: i for i in scores}, categories).values():  # ids by category
        by_acquisition = grouped({i: scores[i] for i in ids}, acquisition_of)
        category_means.append(np.mean([np.mean(v, axis=0) for v in by_acquisition.values()], 0))
    return np.mean(category_means, axis=0)
