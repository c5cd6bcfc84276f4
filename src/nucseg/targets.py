"""Training targets computed from instance labels."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

_FOOTPRINT = np.ones((3, 3), bool)


def size_rank(instance_labels: np.ndarray) -> np.ndarray:
    """Replace each label by its rank (1..N) in increasing (area, label) order; 0 stays 0."""
    areas = np.bincount(instance_labels.ravel())
    present = np.flatnonzero(areas[1:]) + 1
    order = present[np.lexsort((present, areas[present]))]
    rank = np.zeros(areas.size, np.int64)
    rank[order] = np.arange(1, order.size + 1)
    return rank[instance_labels]


def contact_pixels(instance_labels: np.ndarray) -> np.ndarray:
    """Pixels of a nucleus that touch (8-neighbourhood) a *smaller* nucleus.

    Removing them leaves a one-pixel (8-connected) gap wherever two nuclei touch; the gap
    belongs to the larger nucleus, which :func:`nucseg.postprocess.fill_contact_gaps`
    reproduces without knowing the truth.
    """
    labels = size_rank(instance_labels)
    top = int(labels.max()) + 1  # stands for background; small, since filters cast cval via float
    # smallest neighbouring nucleus label; background counts as +infinity
    smallest = ndi.minimum_filter(
        np.where(labels > 0, labels, top), footprint=_FOOTPRINT, mode="constant", cval=top
    )
    return (labels > 0) & (smallest < labels)


def semantic_target(instance_labels: np.ndarray, separate_touching: bool = True) -> np.ndarray:
    """Binary nucleus mask (uint8 0/1).

    With ``separate_touching`` the contact pixels between touching nuclei
    (:func:`contact_pixels`) are background, so the network learns to leave a one-pixel gap
    that instance separation can cut along (a common DSB2018 trick; the gap is given back
    to the nuclei by :func:`nucseg.postprocess.instances_from_probability`).
    """
    mask = instance_labels > 0
    if separate_touching:
        mask &= ~contact_pixels(instance_labels)
    return mask.astype(np.uint8)
