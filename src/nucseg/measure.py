"""Per-nucleus measurements and per-image summaries of instance labels (what a biologist
reads beyond the Kaggle CSV), computed with scikit-image's ``regionprops_table``.

Conventions: pixel units; ``centroid_row``/``centroid_col`` and the bounding box
(``bbox_top``, ``bbox_left`` inclusive, ``bbox_bottom``, ``bbox_right`` exclusive) in image
coordinates (row 0 at the top); ``mean_intensity``/``max_intensity`` of the original image
in its own bit depth, gray images as they are and colour images as the mean of their
colour channels (alpha dropped).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from skimage.measure import regionprops_table

from nucseg.io.images import read_image

MEASUREMENT_COLUMNS = [
    "image",
    "label",
    "area",
    "centroid_row",
    "centroid_col",
    "bbox_top",
    "bbox_left",
    "bbox_bottom",
    "bbox_right",
    "equivalent_diameter",
    "eccentricity",
    "solidity",
    "mean_intensity",
    "max_intensity",
]
SUMMARY_COLUMNS = ["image", "count", "mean_area", "coverage"]

_PROPERTIES = (
    "label",
    "area",
    "centroid",
    "bbox",
    "equivalent_diameter_area",
    "eccentricity",
    "solidity",
    "intensity_mean",
    "intensity_max",
)
_RENAME = {
    "centroid-0": "centroid_row",
    "centroid-1": "centroid_col",
    "bbox-0": "bbox_top",
    "bbox-1": "bbox_left",
    "bbox-2": "bbox_bottom",
    "bbox-3": "bbox_right",
    "equivalent_diameter_area": "equivalent_diameter",
    "intensity_mean": "mean_intensity",
    "intensity_max": "max_intensity",
}


def gray_intensity(image: np.ndarray) -> np.ndarray:
    """The original image as one float channel: gray as it is, colour as the mean of its
    first three channels (alpha dropped)."""
    if image.ndim == 2:
        return image.astype(np.float64)
    return image[..., :3].astype(np.float64).mean(axis=2)


def measure_nuclei(image_id: str, labels: np.ndarray, image: np.ndarray) -> pd.DataFrame:
    """One row per nucleus of ``labels`` (see the module docstring for units)."""
    if labels.max() == 0:
        return pd.DataFrame(columns=MEASUREMENT_COLUMNS)
    table = pd.DataFrame(
        regionprops_table(labels, intensity_image=gray_intensity(image), properties=_PROPERTIES)
    ).rename(columns=_RENAME)
    table.insert(0, "image", image_id)
    return table[MEASUREMENT_COLUMNS].round(4)


def summarize_nuclei(
    measurements: pd.DataFrame, shapes: dict[str, tuple[int, int]]
) -> pd.DataFrame:
    """Per image of ``shapes``: nucleus count, mean area (0 without nuclei) and coverage (the
    share of the image's pixels inside nuclei)."""
    rows = []
    for image_id, (height, width) in sorted(shapes.items()):
        areas = measurements.loc[measurements["image"] == image_id, "area"]
        rows.append(
            {
                "image": image_id,
                "count": len(areas),
                "mean_area": round(float(areas.mean()), 2) if len(areas) else 0.0,
                "coverage": round(float(areas.sum()) / (height * width), 5),
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def measure_instances(
    instances: dict[str, np.ndarray], image_paths: dict[str, Path]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measurements (:func:`measure_nuclei`) and per-image summary
    (:func:`summarize_nuclei`) of instance labels by image id, the intensities read from
    each id's original image file."""
    tables = [
        measure_nuclei(image_id, labels, read_image(image_paths[image_id]))
        for image_id, labels in sorted(instances.items())
    ]
    table = (
        pd.concat(tables, ignore_index=True)
        if tables
        else pd.DataFrame(columns=MEASUREMENT_COLUMNS)
    )
    shapes = {image_id: labels.shape for image_id, labels in instances.items()}
    return table, summarize_nuclei(table, shapes)
