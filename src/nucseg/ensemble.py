"""Ensembling probability maps of several models (or checkpoints): weighted mean or
weighted majority vote, head by head."""

from __future__ import annotations

import numpy as np

from nucseg.errors import NucsegInputError


def weighted_mean(
    prob_maps: list[dict[str, np.ndarray]],
    weights: list[float] | None = None,
    vote: bool = False,
) -> dict[str, np.ndarray]:
    """Per image, the weighted mean of every model's ``K x H x W`` head maps.

    Members may have different head counts (a UNet's semantic map beside a CAMUNet's
    semantic, contour and marker maps): head ``k`` is averaged over the members that have
    it, their weights renormalised to sum 1.  Every input must hold the same image ids and
    image sizes; the result is float32 with the largest head count.  With ``vote`` each
    member contributes its binarised map (``p > 0.5``), so the result is the weighted share
    of members voting "yes" (a weighted majority vote once thresholded at 0.5).
    """
    if not prob_maps:
        raise ValueError("an ensemble needs at least one model")
    weights = np.ones(len(prob_maps)) if weights is None else np.asarray(weights, float)
    if weights.size != len(prob_maps) or (weights < 0).any() or weights.sum() <= 0:
        raise NucsegInputError(
            f"ensemble weights {weights.tolist()} must be {len(prob_maps)} "
            "non-negative numbers with a positive sum"
        )
    ids = sorted(prob_maps[0])
    for maps in prob_maps[1:]:
        if sorted(maps) != ids:
            raise NucsegInputError("ensemble members predicted different sets of images")

    def mean(image_id: str) -> np.ndarray:
        stacks = [maps[image_id] for maps in prob_maps]
        heads = max(len(s) for s in stacks)
        total = np.zeros((heads, *stacks[0].shape[1:]), np.float64)
        weight_sum = np.zeros((heads, 1, 1))
        for w, stack in zip(weights, stacks, strict=True):
            values = stack > 0.5 if vote else stack.astype(np.float64)
            total[: len(stack)] += w * values
            weight_sum[: len(stack)] += w
        return (total / np.maximum(weight_sum, 1e-12)).astype(np.float32)

    return {image_id: mean(image_id) for image_id in ids}
