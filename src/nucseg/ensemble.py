"""Ensembling probability maps of several models."""

from __future__ import annotations

import numpy as np

from nucseg.errors import NucsegInputError


def weighted_mean(
    prob_maps: list[dict[str, np.ndarray]], weights: list[float] | None = None
) -> dict[str, np.ndarray]:
    """Per image, the weighted mean (weights normalised to sum 1) of every model's map.

    Every input must hold the same image ids and shapes; the result is float32.
    """
    if not prob_maps:
        raise ValueError("an ensemble needs at least one model")
    weights = np.ones(len(prob_maps)) if weights is None else np.asarray(weights, float)
    if weights.size != len(prob_maps) or (weights < 0).any() or weights.sum() <= 0:
        raise NucsegInputError(
            f"ensemble weights {weights.tolist()} must be {len(prob_maps)} "
            "non-negative numbers with a positive sum"
        )
    weights = weights / weights.sum()
    ids = sorted(prob_maps[0])
    for maps in prob_maps[1:]:
        if sorted(maps) != ids:
            raise NucsegInputError("ensemble members predicted different sets of images")
    return {
        image_id: sum(
            w * maps[image_id].astype(np.float32)
            for w, maps in zip(weights, prob_maps, strict=True)
        ).astype(np.float32)
        for image_id in ids
    }
