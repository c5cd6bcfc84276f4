"""Grouping annotated images into acquisitions, so that validation holds whole ones out.

Many DSB2018 images are tiles of one field or plates of one experiment: a fold grouped by
image id still shares an acquisition with its training side and flatters the model (0.674
on fold-0 fluorescence against ~0.50 on unseen acquisitions).  The DSB2018 winners and
nnU-Net grouped images by acquisition ("clusters") before splitting; so does this module.

An image's acquisition signature (:func:`acquisition_features`) is what one microscope
setting fixes: the image size, the intensity distribution in the image's own range, the
colour balance, and the typical nucleus size.  Within each (category, height, width) of a
source, origins are clustered by average linkage on those log features and cut at
:data:`ACQUISITION_DISTANCE`; images of one origin (crops, frames) always share one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage

from nucseg.normalize import colour_channels, intensity_range

#: Cut height of the average-linkage tree on the log features (a combined ~2.7x difference).
#: On DSB2018 stage1_train (664 images) it gives 24 fluorescence, 3 stained-tissue and 1
#: brightfield acquisition; half of it (0.5) splits them into 56 / 15 / 2, which cuts plates
#: whose images differ only in density.  Merging too much costs fold balance; splitting one
#: acquisition across folds costs honesty: the coarser cut is the safe side.
ACQUISITION_DISTANCE = 1.0

FEATURES = ("median", "p99", "spread", "red_blue", "green_blue", "nucleus_area")


def acquisition_features(image: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Log features of one annotated image (see the module docstring): median, 99th
    percentile and standard deviation of the gray level in the image's own range (0 = its
    black level, 1 = its white, :func:`nucseg.normalize.intensity_range`), the red/blue and
    green/blue balance of the means, and the median nucleus area in pixels."""
    black, white = intensity_range(image)
    unit = (colour_channels(image).astype(np.float32) - black) / np.float32(white - black)
    means = unit.reshape(-1, 3).mean(axis=0) + 0.01
    gray = unit.mean(axis=2)
    median, p99 = np.percentile(gray, [50, 99])
    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas > 0]
    return {
        "median": float(np.log(max(median, 0) + 0.01)),
        "p99": float(np.log(max(p99, 0) + 0.01)),
        "spread": float(np.log(gray.std() + 0.01)),
        "red_blue": float(np.log(means[0] / means[2])),
        "green_blue": float(np.log(means[1] / means[2])),
        "nucleus_area": float(np.log(np.median(areas))) if areas.size else 0.0,
    }


def origin_signature(image: np.ndarray, labels: np.ndarray, category: str) -> dict:
    """One row of :func:`cluster_acquisitions`' table for an origin's (first) image:
    ``category`` (as :func:`nucseg.normalize.detect_category` calls it), ``height``,
    ``width`` and :func:`acquisition_features`."""
    height, width = image.shape[:2]
    signature = {"category": category, "height": height, "width": width}
    return signature | acquisition_features(image, labels)


def cluster_acquisitions(
    origins: pd.DataFrame, prefix: str, distance: float = ACQUISITION_DISTANCE
) -> pd.Series:
    """Acquisition name of every origin (one row each, with columns ``category``,
    ``height``, ``width`` and :data:`FEATURES`), as a Series indexed like ``origins``:
    ``<prefix>:<category>:<height>x<width>:<k>`` with ``k`` counting clusters from 1 in
    order of first appearance (row order), so names are stable for a sorted input."""
    names = pd.Series("", index=origins.index, dtype=object)
    for (category, height, width), group in origins.groupby(
        ["category", "height", "width"], sort=True
    ):
        if len(group) == 1:
            clusters = np.ones(1, int)
        else:
            tree = linkage(group[list(FEATURES)].to_numpy(float), method="average")
            clusters = fcluster(tree, distance, criterion="distance")
        order = {c: k for k, c in enumerate(dict.fromkeys(clusters), start=1)}
        names[group.index] = [f"{prefix}:{category}:{height}x{width}:{order[c]}" for c in clusters]
    return names
