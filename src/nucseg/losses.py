"""Losses on logits for binary segmentation."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_iou_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """``1 - soft Jaccard`` computed per image and averaged over the batch.

    ``soft Jaccard = (sum(p*t) + smooth) / (sum(p) + sum(t) - sum(p*t) + smooth)`` with
    ``p = sigmoid(logits)``; ``smooth`` makes an empty-vs-empty image score 1.
    """
    prob = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    intersection = (prob * target).sum(1)
    union = prob.sum(1) + target.sum(1) - intersection
    return (1 - (intersection + smooth) / (union + smooth)).mean()


def bce_soft_iou_loss(
    logits: torch.Tensor, target: torch.Tensor, iou_weight: float = 1.0
) -> torch.Tensor:
    """Binary cross-entropy plus ``iou_weight`` x soft-IoU loss."""
    return F.binary_cross_entropy_with_logits(logits, target) + iou_weight * soft_iou_loss(
        logits, target
    )
