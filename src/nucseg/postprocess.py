"""Instance separation: probability map -> instance labels (marker-controlled watershed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from nucseg.targets import size_rank

_FOOTPRINT = np.ones((3, 3), bool)


@dataclass(frozen=True)
class PostprocessConfig:
    """Thresholds of the instance separation (config ``postprocess:``).

    ``mask_threshold``: probability above which a pixel belongs to some nucleus.
    ``marker_threshold``: probability above which a pixel is a nucleus core; connected cores
    seed the watershed.  ``split_h``: cores are split further at peaks of their distance
    transform higher than this many pixels (0 disables).  ``min_size``: smaller objects are
    removed.
    """

    mask_threshold: float = 0.5
    marker_threshold: float = 0.7
    split_h: float = 0.25
    min_size: int = 12

    @classmethod
    def from_config(cls, options: dict) -> PostprocessConfig:
        """From config ``postprocess:`` (its ``tune``/``grid`` keys belong to the tuning)."""
        return cls(**{k: v for k, v in options.items() if k not in ("tune", "grid")})


def markers_from_probability(
    core_prob: np.ndarray, config: PostprocessConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(markers, distance)``: labelled seeds and the cores' distance transform."""
    cores = core_prob > config.marker_threshold
    distance = ndi.distance_transform_edt(cores)
    if config.split_h > 0:
        # peaks of the smoothed distance split cores that still hold touching nuclei
        peaks = h_maxima(ndi.gaussian_filter(distance, 1.0), config.split_h) > 0
        seeds = peaks & cores
        # cores without any peak (small ones) keep one seed: the whole core
        core_labels, _ = ndi.label(cores)
        has_peak = np.zeros(core_labels.max() + 1, bool)
        has_peak[core_labels[seeds]] = True
        seeds |= cores & ~has_peak[core_labels]
    else:
        seeds = cores
    markers, _ = ndi.label(seeds)
    return markers, distance


def fill_contact_gaps(labels: np.ndarray) -> np.ndarray:
    """Give background pixels that touch two different nuclei (8-neighbourhood) to the
    larger of them, closing the gaps :func:`nucseg.targets.semantic_target` teaches the
    network to leave; outlines of isolated nuclei are left as they are."""
    ranks = size_rank(labels)
    top = int(ranks.max()) + 1  # stands for background; small, since filters cast cval via float
    largest = ndi.maximum_filter(ranks, footprint=_FOOTPRINT, mode="constant", cval=0)
    smallest = ndi.minimum_filter(
        np.where(ranks > 0, ranks, top), footprint=_FOOTPRINT, mode="constant", cval=top
    )
    gap = (labels == 0) & (largest > 0) & (smallest < largest)
    label_of_rank = np.zeros(int(ranks.max()) + 1, labels.dtype)
    label_of_rank[ranks.ravel()] = labels.ravel()
    return np.where(gap, label_of_rank[largest], labels)


def core_probability(probs: np.ndarray) -> np.ndarray:
    """Probability of "nucleus core" from the heads ``K x H x W`` (semantic[, contour
    [, marker]]): the semantic map, or the marker map when there is one, times
    ``1 - contour`` when there is a contour head (cores stop at boundaries)."""
    core = probs[2] if len(probs) >= 3 else probs[0]
    return core * (1 - probs[1]) if len(probs) >= 2 else core


def instances_from_probability(
    probs: np.ndarray, config: PostprocessConfig = PostprocessConfig()
) -> np.ndarray:
    """Instance labels (int32, 1..N, one label per pixel) from head probabilities
    ``K x H x W`` (or one semantic map ``H x W``).

    Seeds from :func:`markers_from_probability` on :func:`core_probability` are grown by
    watershed on the negated distance transform within the hole-filled mask
    ``semantic > mask_threshold``; the one-pixel gaps the network leaves between touching
    nuclei are given back (:func:`fill_contact_gaps`); objects smaller than ``min_size`` are
    dropped and labels renumbered 1..N.
    """
    probs = probs[None] if probs.ndim == 2 else probs
    mask = ndi.binary_fill_holes(probs[0] > config.mask_threshold)
    markers, distance = markers_from_probability(core_probability(probs), config)
    labels = fill_contact_gaps(watershed(-distance, markers, mask=mask))
    areas = np.bincount(labels.ravel())
    keep = areas >= config.min_size
    keep[0] = False
    new_ids = np.zeros(areas.size, np.int32)
    new_ids[keep] = np.arange(1, keep.sum() + 1)
    return new_ids[labels]
