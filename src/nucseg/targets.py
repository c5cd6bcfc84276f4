"""Training targets computed from instance labels.

A dataset version caches, per image, a ``4 x H x W`` float32 stack (:data:`TARGET_CHANNELS`):
the semantic mask, the nucleus contours, the markers (nucleus cores) and a pixel weight map.
A network with ``K`` heads learns the first ``K`` channels (semantic; + contour for CAUNet;
+ marker for CAMUNet); the weight map weighs the pixel losses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

TARGET_CHANNELS = ("semantic", "contour", "marker", "weight")

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


@dataclass(frozen=True)
class TargetConfig:
    """How targets are drawn from instance labels (config ``targets:``).

    ``separate_touching``: leave a one-pixel gap between touching nuclei in the semantic
    mask.  ``contour_width``: contour thickness in pixels, inside each nucleus;
    ``contour_mode``: ``all`` outlines or only ``touching`` (where two nuclei meet).
    ``marker``: ``eroded`` (pixels deeper than ``marker_depth`` of the nucleus's own maximum
    depth) or ``centroid`` (disc of ``marker_radius`` around the centroid, within the nucleus).
    Weights (original U-Net paper): ``1 + weight_w0 * exp(-(d1 + d2)^2 / (2 weight_sigma^2))``
    on background, ``d1``/``d2`` the distances to the nearest and second-nearest nucleus, plus
    ``weight_contour`` on contour pixels and ``weight_marker`` on marker pixels.
    """

    separate_touching: bool = True
    contour_width: int = 2
    contour_mode: str = "all"
    marker: str = "eroded"
    marker_depth: float = 0.5
    marker_radius: float = 3.0
    weight_w0: float = 10.0
    weight_sigma: float = 5.0
    weight_contour: float = 1.0
    weight_marker: float = 0.0


def _window(width: int) -> np.ndarray:
    return np.ones((2 * width + 1, 2 * width + 1), bool)


def contour_target(
    instance_labels: np.ndarray, width: int = 2, touching_only: bool = False
) -> np.ndarray:
    """Inner boundary (uint8 0/1) of each nucleus, ``width`` pixels thick: nucleus pixels with
    another label (background too, unless ``touching_only``) within ``width`` pixels
    (chessboard distance).  The image border is not a boundary."""
    labels = instance_labels.astype(np.int64)
    top = int(labels.max()) + 1
    window = _window(width)
    largest = ndi.maximum_filter(labels, footprint=window, mode="nearest")
    smallest = ndi.minimum_filter(
        np.where(labels > 0, labels, top) if touching_only else labels,
        footprint=window,
        mode="nearest",
    )
    return ((labels > 0) & ((largest != labels) | (smallest != labels))).astype(np.uint8)


def marker_target(
    instance_labels: np.ndarray, mode: str = "eroded", depth: float = 0.5, radius: float = 3.0
) -> np.ndarray:
    """Nucleus cores (uint8 0/1), one blob per nucleus (see :class:`TargetConfig`)."""
    n = int(instance_labels.max())
    if n == 0:
        return np.zeros(instance_labels.shape, np.uint8)
    index = np.arange(1, n + 1)
    inside = instance_labels > 0
    if mode == "eroded":
        # depth inside each nucleus: touching nuclei are kept apart by their contact pixels
        distance = ndi.distance_transform_edt(semantic_target(instance_labels))
        deepest = np.zeros(n + 1)
        deepest[1:] = ndi.maximum(distance, instance_labels, index)
        return (inside & (distance >= depth * deepest[instance_labels]) & (distance > 0)).astype(
            np.uint8
        )
    if mode == "centroid":
        centres = np.zeros((n + 1, 2))
        centres[1:] = ndi.center_of_mass(inside, instance_labels, index)
        rows, cols = np.indices(instance_labels.shape)
        own = centres[instance_labels]
        near = (rows - own[..., 0]) ** 2 + (cols - own[..., 1]) ** 2 <= radius**2
        return (inside & near).astype(np.uint8)
    raise ValueError(f"targets.marker must be 'eroded' or 'centroid', not {mode!r}")


def border_weights(instance_labels: np.ndarray, w0: float = 10.0, sigma: float = 5.0) -> np.ndarray:
    """``w0 * exp(-(d1 + d2)^2 / (2 sigma^2))`` on background pixels (0 inside nuclei), with
    ``d1``/``d2`` the Euclidean distances to the nearest and second-nearest nucleus
    (Ronneberger et al. 2015).  Each nucleus's distance is computed in its bounding box
    grown by the distance beyond which the weight is negligible (``d1 + d2 > 3.8 sigma``)."""
    shape = instance_labels.shape
    weights = np.zeros(shape, np.float32)
    if w0 == 0 or instance_labels.max() < 2:
        return weights
    nearest = np.full(shape, np.inf)
    second = np.full(shape, np.inf)
    margin = int(np.ceil(3.8 * sigma)) + 1
    for label, box in enumerate(ndi.find_objects(instance_labels), start=1):
        if box is None:
            continue
        window = tuple(
            slice(max(0, b.start - margin), min(size, b.stop + margin))
            for b, size in zip(box, shape, strict=True)
        )
        distance = ndi.distance_transform_edt(instance_labels[window] != label)
        near, sec = nearest[window], second[window]
        second[window] = np.minimum(sec, np.maximum(near, distance))
        nearest[window] = np.minimum(near, distance)
    background = (instance_labels == 0) & np.isfinite(second)
    total = nearest[background] + second[background]
    weights[background] = w0 * np.exp(-(total**2) / (2 * sigma**2))
    return weights


def compute_targets(
    instance_labels: np.ndarray, config: TargetConfig = TargetConfig()
) -> np.ndarray:
    """The ``4 x H x W`` float32 target stack (:data:`TARGET_CHANNELS`) of one image."""
    semantic = semantic_target(instance_labels, config.separate_touching)
    contour = contour_target(
        instance_labels, config.contour_width, touching_only=config.contour_mode == "touching"
    )
    marker = marker_target(
        instance_labels, config.marker, config.marker_depth, config.marker_radius
    )
    weight = (
        1.0
        + border_weights(instance_labels, config.weight_w0, config.weight_sigma)
        + config.weight_contour * contour
        + config.weight_marker * marker
    )
    return np.stack([semantic, contour, marker, weight]).astype(np.float32)
