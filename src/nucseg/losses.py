"""Segmentation losses on logits, combined per head (config ``models.<name>.loss``).

Every pixel loss takes logits and targets ``N x H x W`` (one head) and returns a scalar;
region losses (soft IoU, soft Dice) are computed per image and averaged over the batch.
A softmax head (``ModelConfig.classes``) has its own losses over all ``K`` channels at once,
logits and one-hot targets ``N x K x H x W``: cross-entropy and multi-class soft Dice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from nucseg.errors import NucsegInputError


def bce_loss(logits, target, weight=None):
    """Binary cross-entropy, optionally weighted per pixel (mean of ``weight * bce``)."""
    return F.binary_cross_entropy_with_logits(logits, target, weight=weight)


def focal_loss(logits, target, weight=None, gamma: float = 2.0, alpha: float = 0.25):
    """Focal loss (Lin et al. 2017): ``-a_t (1 - p_t)^gamma log p_t``, with ``a_t = alpha``
    on positives and ``1 - alpha`` on negatives (``alpha < 0`` disables it)."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = torch.exp(-bce)
    loss = (1 - p_t) ** gamma * bce
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    if weight is not None:
        loss = loss * weight
    return loss.mean()


def _overlaps(logits, target):
    prob = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    return (prob * target).sum(1), prob.sum(1), target.sum(1)


def soft_iou_loss(logits, target, weight=None, smooth: float = 1.0):
    """``1 - (sum(p t) + s) / (sum(p) + sum(t) - sum(p t) + s)`` per image, averaged;
    ``smooth`` (``s``) makes an empty-vs-empty image score 1.  ``weight`` is unused."""
    intersection, prob_sum, target_sum = _overlaps(logits, target)
    union = prob_sum + target_sum - intersection
    return (1 - (intersection + smooth) / (union + smooth)).mean()


def soft_dice_loss(logits, target, weight=None, smooth: float = 1.0, per_image: bool = True):
    """``1 - (2 sum(p t) + s) / (sum(p) + sum(t) + s)``, per image then averaged
    (``per_image``) or over the whole batch at once.  ``weight`` is unused."""
    intersection, prob_sum, target_sum = _overlaps(logits, target)
    if not per_image:
        intersection, prob_sum, target_sum = intersection.sum(), prob_sum.sum(), target_sum.sum()
    return (1 - (2 * intersection + smooth) / (prob_sum + target_sum + smooth)).mean()


def cross_entropy_loss(logits, onehot, weight=None):
    """Softmax cross-entropy against one-hot targets, optionally weighted per pixel."""
    loss = -(onehot * F.log_softmax(logits, dim=1)).sum(1)
    return (loss * weight).mean() if weight is not None else loss.mean()


def multiclass_dice_loss(logits, onehot, weight=None, smooth: float = 1.0):
    """``1 - mean_k (2 sum(p_k t_k) + s) / (sum(p_k) + sum(t_k) + s)`` with softmax
    probabilities, sums over the batch and pixels: every class weighs the same however
    small it is.  ``weight`` is unused."""
    prob = F.softmax(logits, dim=1)
    dims = (0, 2, 3)
    intersection = (prob * onehot).sum(dims)
    total = prob.sum(dims) + onehot.sum(dims)
    return (1 - (2 * intersection + smooth) / (total + smooth)).mean()


#: losses of a softmax head, over all its channels
SOFTMAX_LOSSES = {"cross_entropy": cross_entropy_loss, "multiclass_dice": multiclass_dice_loss}

PIXEL_LOSSES = {
    "bce": bce_loss,
    "focal": focal_loss,
    "iou": soft_iou_loss,
    "dice": soft_dice_loss,
}


@dataclass(frozen=True)
class LossConfig:
    """Loss of a model (config ``models.<name>.loss``).

    ``terms``: loss name (:data:`PIXEL_LOSSES`) -> weight, applied to every head;
    ``head_weights``: head name -> weight (heads not named weigh 1); ``pixel_weights``: use
    the cached weight map (``nucseg.targets``, contours and gaps between nuclei emphasised)
    in BCE and focal; ``presence_weight``: weight of the presence head's BCE against "the
    crop holds a nucleus".  Seed's best: ``{iou: 1, focal: 1}`` with pixel weights.
    """

    terms: dict = field(default_factory=lambda: {"bce": 1.0, "iou": 1.0})
    head_weights: dict = field(default_factory=dict)
    pixel_weights: bool = False
    presence_weight: float = 0.5
    focal_gamma: float = 2.0
    focal_alpha: float = 0.25
    smooth: float = 1.0
    dice_per_image: bool = True

    def __post_init__(self):
        known = {**PIXEL_LOSSES, **SOFTMAX_LOSSES}
        unknown = sorted(set(self.terms) - set(known))
        if unknown:
            raise NucsegInputError(
                f"loss.terms: unknown loss {unknown[0]!r}; expected {', '.join(known)}"
            )

    def softmax_loss(self, logits, onehot, weight=None) -> torch.Tensor:
        """The weighted sum of :attr:`terms` for a softmax head (``N x K x H x W``)."""
        wrong = sorted(set(self.terms) - set(SOFTMAX_LOSSES))
        if wrong:
            raise NucsegInputError(
                f"loss.terms: {wrong[0]!r} is not a softmax loss; "
                f"use {', '.join(SOFTMAX_LOSSES)} with net.classes"
            )
        pixel_weight = weight if self.pixel_weights else None
        options = {"multiclass_dice": {"smooth": self.smooth}}
        return sum(
            factor * SOFTMAX_LOSSES[name](logits, onehot, pixel_weight, **options.get(name, {}))
            for name, factor in self.terms.items()
        )

    def head_loss(self, logits, target, weight=None) -> torch.Tensor:
        """The weighted sum of :attr:`terms` for one head."""
        options = {
            "focal": {"gamma": self.focal_gamma, "alpha": self.focal_alpha},
            "iou": {"smooth": self.smooth},
            "dice": {"smooth": self.smooth, "per_image": self.dice_per_image},
        }
        pixel_weight = weight if self.pixel_weights else None
        return sum(
            factor * PIXEL_LOSSES[name](logits, target, pixel_weight, **options.get(name, {}))
            for name, factor in self.terms.items()
        )


def segmentation_loss(
    output, targets: torch.Tensor, heads: tuple[str, ...], config: LossConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and the loss of each head (and ``presence``) of a network output
    (:class:`nucseg.models.NetOutput`) against targets ``N x (K + 1) x H x W``: the ``K``
    head targets then the pixel weight map."""
    weight = targets[:, -1]
    if heads == ("classes",):  # one softmax head over all channels, one-hot targets
        parts = {"classes": config.softmax_loss(output.masks, targets[:, :-1], weight)}
    else:
        parts = {
            head: config.head_loss(output.masks[:, k], targets[:, k], weight)
            for k, head in enumerate(heads)
        }
    total = sum(config.head_weights.get(head, 1.0) * loss for head, loss in parts.items())
    if output.presence is not None:
        present = (targets[:, 0].flatten(1).amax(1) > 0).to(output.presence.dtype)
        parts["presence"] = F.binary_cross_entropy_with_logits(output.presence, present)
        total = total + config.presence_weight * parts["presence"]
    return total, parts
