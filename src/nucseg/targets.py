"""Training targets computed from instance labels."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def touching_borders(instance_labels: np.ndarray) -> np.ndarray:
    """Pixels of a nucleus that have a *different* nucleus among their 8 neighbours."""
    labels = instance_labels
    grown_max = ndi.maximum_filter(labels, size=3, mode="constant", cval=0)
    # minimum over neighbours ignoring background: replace 0 by a value above every label
    sentinel = np.where(labels > 0, labels, np.iinfo(np.int64).max).astype(np.int64)
    grown_min = ndi.minimum_filter(sentinel, size=3, mode="constant", cval=np.iinfo(np.int64).max)
    return (labels > 0) & ((grown_max != labels) | ((grown_min != labels) & (grown_min != np.iinfo(np.int64).max)))


def semantic_target(instance_labels: np.ndarray, separate_touching: bool = True) -> np.ndarray:
    """Binary nucleus mask (uint8 0/1).

    With ``separate_touching`` the pixels where two nuclei touch are background, so the
    network learns to leave a one-pixel gap between touching nuclei that the instance
    separation can cut along (a common DSB2018 trick; the gap is given back to the nuclei
    by the watershed in :mod:`nucseg.postprocess`).
    """
    mask = instance_labels > 0
    if separate_touching:
        mask &= ~touching_borders(instance_labels)
    return mask.astype(np.uint8)
