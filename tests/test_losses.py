"""Losses: hand-computed values and the per-head combination."""

import math

import pytest
import torch

from nucseg.errors import NucsegInputError
from nucseg.losses import (
    LossConfig,
    bce_loss,
    focal_loss,
    segmentation_loss,
    soft_dice_loss,
    soft_iou_loss,
)
from nucseg.models import NetOutput

LOGIT_OF_08 = math.log(0.8 / 0.2)


def test_region_losses_by_hand():
    logits = torch.full((1, 2, 2), LOGIT_OF_08)  # p = 0.8 everywhere
    target = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    # sum(p t) = 1.6, sum(p) = 3.2, sum(t) = 2
    assert float(soft_iou_loss(logits, target, smooth=0)) == pytest.approx(1 - 1.6 / 3.6)
    assert float(soft_dice_loss(logits, target, smooth=0)) == pytest.approx(1 - 3.2 / 5.2)
    empty = torch.full((1, 2, 2), -30.0)
    assert float(soft_dice_loss(empty, torch.zeros(1, 2, 2))) == pytest.approx(0, abs=1e-6)


def test_dice_per_image_differs_from_dice_over_the_batch():
    logits = torch.stack([torch.full((2, 2), 30.0), torch.full((2, 2), -30.0)])
    target = torch.stack([torch.ones(2, 2), torch.tensor([[1.0, 0], [0, 0]])])
    per_image = float(soft_dice_loss(logits, target, smooth=0))
    batch = float(soft_dice_loss(logits, target, smooth=0, per_image=False))
    assert per_image == pytest.approx(0.5, abs=1e-6) and batch == pytest.approx(1 - 8 / 9, abs=1e-6)


def test_weighted_bce_and_focal_by_hand():
    logits = torch.full((1, 1, 2), LOGIT_OF_08)
    target = torch.tensor([[[1.0, 0.0]]])
    weight = torch.tensor([[[1.0, 3.0]]])
    expected = (-math.log(0.8) - 3 * math.log(0.2)) / 2
    assert float(bce_loss(logits, target, weight)) == pytest.approx(expected, rel=1e-5)
    focal = (0.25 * 0.2**2 * -math.log(0.8) + 0.75 * 0.8**2 * -math.log(0.2)) / 2
    assert float(focal_loss(logits, target, gamma=2, alpha=0.25)) == pytest.approx(focal, rel=1e-5)


def test_heads_are_weighted_and_presence_learns_whether_a_crop_holds_a_nucleus():
    masks = torch.zeros(2, 2, 4, 4)
    targets = torch.zeros(2, 3, 4, 4)  # semantic, contour, weight
    targets[0, 0, 1, 1] = 1
    targets[:, 2] = 1
    presence = torch.tensor([5.0, -5.0])  # confident and right
    config = LossConfig(terms={"bce": 1.0}, head_weights={"contour": 0.0}, presence_weight=2.0)
    total, parts = segmentation_loss(
        NetOutput(masks, presence), targets, ("semantic", "contour"), config
    )
    assert set(parts) == {"semantic", "contour", "presence"}
    expected = parts["semantic"] + 2.0 * parts["presence"]
    assert float(total) == pytest.approx(float(expected)) and float(parts["presence"]) < 0.01


def test_pixel_weights_apply_only_when_asked():
    output = NetOutput(torch.zeros(1, 1, 2, 2), None)
    targets = torch.stack([torch.ones(1, 2, 2), torch.full((1, 2, 2), 3.0)], 1)
    plain, _ = segmentation_loss(output, targets, ("semantic",), LossConfig(terms={"bce": 1}))
    weighted, _ = segmentation_loss(
        output, targets, ("semantic",), LossConfig(terms={"bce": 1}, pixel_weights=True)
    )
    assert float(weighted) == pytest.approx(3 * float(plain))


def test_unknown_loss_is_named():
    with pytest.raises(NucsegInputError, match="loss.terms: unknown loss 'hinge'"):
        LossConfig(terms={"hinge": 1.0})
