"""Instance segmentation metrics, as scored in the Kaggle 2018 Data Science Bowl.

DSB score of one image: the mean over IoU thresholds ``t = 0.50, 0.55, ..., 0.95`` of
``TP(t) / (TP(t) + FP(t) + FN(t))``, where a predicted nucleus matches a true one when their
IoU is **strictly greater** than ``t``.  Because ``t >= 0.5``, each object matches at most one
other, so no assignment problem is needed.  Convention: an image with no true and no predicted
nuclei scores 1.0 at every threshold.  The data set score is the mean over images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nucseg.labels import relabel_sequential

DSB_THRESHOLDS = np.round(np.arange(0.5, 1.0, 0.05), 2)


def iou_matrix(true_labels: np.ndarray, pred_labels: np.ndarray) -> np.ndarray:
    """IoU of every (true nucleus, predicted nucleus) pair: shape ``(n_true, n_pred)``.

    Labels need not be consecutive; rows and columns follow the sorted label values > 0.
    One pass of ``np.bincount`` over the pixels builds the intersection table.
    """
    if true_labels.shape != pred_labels.shape:
        raise ValueError(f"shape mismatch: {true_labels.shape} vs {pred_labels.shape}")
    true_seq, n_true = relabel_sequential(true_labels)
    pred_seq, n_pred = relabel_sequential(pred_labels)
    joint = np.bincount(
        (true_seq.ravel().astype(np.int64) * (n_pred + 1) + pred_seq.ravel()),
        minlength=(n_true + 1) * (n_pred + 1),
    ).reshape(n_true + 1, n_pred + 1)
    intersection = joint[1:, 1:]
    area_true = joint[1:, :].sum(axis=1, keepdims=True)
    area_pred = joint[:, 1:].sum(axis=0, keepdims=True)
    union = area_true + area_pred - intersection
    return intersection / np.maximum(union, 1)


@dataclass(frozen=True)
class MatchCounts:
    """True positives, false positives and false negatives at each threshold."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

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
    iou = iou_matrix(true_labels, pred_labels)
    n_true, n_pred = iou.shape
    best = iou.max(axis=1) if n_pred else np.zeros(n_true)
    tp = (best[None, :] > thresholds[:, None]).sum(axis=1)
    return MatchCounts(thresholds, tp, n_pred - tp, n_true - tp)


def dsb_score(true_labels: np.ndarray, pred_labels: np.ndarray) -> float:
    """DSB score of one image (see the module docstring for the exact definition)."""
    return float(match_counts(true_labels, pred_labels).precision_dsb.mean())
