"""Noise fields the generators share."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std gaussian-smoothed noise field."""
    field_ = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (field_ - field_.mean()) / (field_.std() + 1e-12)
