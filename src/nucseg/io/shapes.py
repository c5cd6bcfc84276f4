"""Instance labels as outlines that other tools open: ImageJ/Fiji ROI sets and QuPath
GeoJSON, and label TIFFs that carry their pixel size.

Outlines follow pixel edges: a nucleus's polygon is the union of its pixels' unit squares
(``x``/``y`` in pixels, ``(0, 0)`` the top-left corner of the top-left pixel), so filling
it again gives back exactly its pixels (ImageJ's "traced" ROIs, what the wand tool makes).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import roifile
import shapely
import tifffile
from scipy import ndimage as ndi

from nucseg.io.atomic import atomic_path


def outlines(labels: np.ndarray) -> Iterator[tuple[int, shapely.Polygon]]:
    """``(label, polygon)`` of every nucleus, in label order: the union of its pixels'
    squares (pixel-edge outline; holes kept; a nucleus in several pieces gives its largest
    piece)."""
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        inside = labels[box] == index
        padded = np.pad(inside, ((0, 0), (1, 1)))
        steps = np.diff(padded.astype(np.int8), axis=1)
        rows, starts = np.nonzero(steps == 1)
        _, ends = np.nonzero(steps == -1)  # same row order: one end per start
        top, left = box[0].start, box[1].start
        runs = shapely.box(left + starts, top + rows, left + ends, top + rows + 1)
        shape = shapely.union_all(runs).simplify(0)  # merge runs; drop collinear corners
        if isinstance(shape, shapely.MultiPolygon):
            shape = max(shape.geoms, key=lambda piece: piece.area)
        yield index, shapely.geometry.polygon.orient(shape)


def write_imagej_rois(labels: np.ndarray, path: Path | str) -> int:
    """Write an ImageJ/Fiji ROI set (``.zip`` of traced polygon ROIs, each named by its
    label id) atomically; return the count.  Fiji: drag the zip onto the image, or ROI
    Manager > More > Open."""
    rois = []
    for label, polygon in outlines(labels):
        roi = roifile.ImagejRoi.frompoints(
            np.asarray(polygon.exterior.coords)[:-1], name=str(label)
        )
        roi.roitype = roifile.ROI_TYPE.TRACED
        rois.append(roi)
    with atomic_path(path) as tmp:  # keeps the .zip suffix roifile writes a set by
        if rois:
            roifile.roiwrite(tmp, rois)
        else:
            zipfile.ZipFile(tmp, "w").close()  # an empty ROI set
    return len(rois)


def write_geojson(
    labels: np.ndarray, path: Path | str, measurements: pd.DataFrame | None = None
) -> int:
    """Write a GeoJSON FeatureCollection for QuPath (File > Import objects): one
    ``detection`` per nucleus, its pixel-edge polygon in pixel coordinates, ``name`` its
    label id and, when given, its row of ``measurements`` (indexed by label) as QuPath
    measurements.  Atomic; returns the count."""
    features = []
    for label, polygon in outlines(labels):
        properties = {"objectType": "detection", "name": str(label)}
        if measurements is not None and label in measurements.index:
            row = measurements.loc[label]
            properties["measurements"] = {
                str(k): float(v) for k, v in row.items() if isinstance(v, int | float | np.number)
            }
        features.append(
            {
                "type": "Feature",
                "id": str(label),
                "geometry": shapely.geometry.mapping(polygon),
                "properties": properties,
            }
        )
    collection = {"type": "FeatureCollection", "features": features}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(collection, default=_plain))
    return len(features)


def _plain(value):
    """JSON for the tuples of shapely's mapping (already lists of numbers)."""
    return list(value) if isinstance(value, tuple) else float(value)


def write_label_tiff(
    labels: np.ndarray,
    path: Path | str,
    pixel_size_um: float | None = None,
    axes: str = "YX",
) -> None:
    """Write instance labels as a TIFF that Fiji and napari open as they are: ImageJ-flavoured
    uint16, or a plain uint32 TIFF when there are more than 65,535 nuclei (ImageJ's flavour
    has no 32-bit integers); with ``pixel_size_um`` its calibration (micrometres per pixel)
    in the TIFF resolution tags (and ImageJ's unit).  ``axes``: ImageJ's letters for a
    stack of label images (``TYX``, ``ZYX``, ``TZYX``: a hyperstack), written one plane at a
    time (``labels`` may be a memory-mapped stack larger than memory).  Atomic."""
    wide = labels.max() >= 2**16  # ImageJ's TIFF flavour holds 8/16-bit and float only
    options: dict = {"imagej": not wide}
    metadata = {} if wide else {"axes": axes}
    if pixel_size_um:
        options["resolution"] = (1 / pixel_size_um, 1 / pixel_size_um)
        if wide:
            options["resolutionunit"] = "MICROMETER"
        else:
            metadata["unit"] = "um"
    if metadata:
        options["metadata"] = metadata
    dtype = np.uint32 if wide else np.uint16
    if labels.ndim > 2:
        planes = labels.reshape(-1, *labels.shape[-2:])
        data = (plane.astype(dtype) for plane in planes)
        options |= {"shape": labels.shape, "dtype": dtype}
    else:
        data = labels.astype(dtype)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, data, **options)
