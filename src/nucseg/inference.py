"""Trained models (or an ensemble of them) on image files, outside Snakemake.

Used by ``nucseg predict``.  Each image is read in any supported format (keeping its bit
depth), segmented by a :class:`nucseg.segmenter.Segmenter` (models loaded once) and written,
one image at a time, as the chosen outputs (:data:`OUTPUTS`; :mod:`nucseg.io.shapes`).  A
TIFF stack (time-lapse, z-stack, hyperstack) is segmented plane by plane in 2-D, each plane
an image of its own whose id is the file stem with the plane's suffix (``movie_t03``:
:class:`nucseg.io.images.Plane`); a multi-channel file needs the nuclear stain's channel.
Image ids below are file stems (plus a plane's suffix):

- ``tif``: ``<out>/<stem>.tif`` instance labels (16-bit ImageJ TIFF, 32-bit beyond 65,535
  nuclei; with a pixel size, calibrated): Fiji and napari open them as they are.  A
  stack's planes make one label stack ``<out>/<file stem>.tif`` that overlays the input:
  its time and depth axes as an ImageJ hyperstack (``TYX``, ``ZYX``, ``TZYX``), any
  other stack one slice per plane in the file's order; each plane's labels count from 1
  (until its last plane they wait in a temporary file in ``<out>``, not in memory);
- ``csv``: ``<out>/submission.csv`` (``ImageId`` = file stem, RLE 1-based column-major, see
  :mod:`nucseg.rle`), ``<out>/measurements.csv`` (one row per nucleus) and
  ``<out>/summary.csv`` (one row per image), see :mod:`nucseg.measure`;
- ``roi``: ``<out>/<stem>_rois.zip``, an ImageJ/Fiji ROI set (ROI names = label ids);
- ``geojson``: ``<out>/<stem>.geojson``, QuPath detections with their measurements.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from nucseg.errors import NucsegInputError
from nucseg.io.images import Plane, image_planes
from nucseg.io.kaggle import IMAGE_SUFFIXES
from nucseg.io.shapes import write_geojson, write_imagej_rois, write_label_tiff
from nucseg.io.tables import write_table
from nucseg.measure import measure_nuclei, summarize_nuclei
from nucseg.rle import encode_labels
from nucseg.segmenter import Segmenter, check_image
from nucseg.submission import write_encoded_submission

log = logging.getLogger(__name__)


def image_files(paths: list[Path | str]) -> list[Path]:
    """The image files named by ``paths``: files as given; a folder gives the images in it
    (sorted), or, when it has none, the ``<id>/images/<id>.*`` images of Kaggle's layout."""
    files = []
    for path in map(Path, paths):
        if not path.is_dir():
            files.append(path)
            continue
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            found = sorted(p for p in path.glob("*/images/*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise NucsegInputError(
                f"{path}: no images in this folder (expected {', '.join(IMAGE_SUFFIXES)} files "
                "or Kaggle's <id>/images/<id>.png)"
            )
        files.extend(found)
    return files


class LabelStack:
    """The labels of a TIFF stack's planes as they are segmented, in the file's order, kept
    in a memory-mapped file in ``folder`` rather than in memory (a 1000-frame 1024²
    time-lapse holds 4 GB of labels) until the last plane fills it.  :meth:`hyperstack`
    gives them as one array with its ImageJ axes: a time and/or depth stack keeps its shape
    (``TZYX``), any other (pages of unknown meaning, other axes) is one slice per plane
    (``ZYX``)."""

    def __init__(self, plane: Plane, plane_shape: tuple[int, int], folder: Path):
        self.plane, self.filled = plane, 0
        spool = folder / f"{plane.path.stem}.npy"  # one label file per stem (checked before)
        count = math.prod(plane.stack_shape)
        self.planes = np.lib.format.open_memmap(spool, "w+", np.int32, (count, *plane_shape))

    def add(self, labels: np.ndarray) -> bool:
        """Keep the next plane's labels; True once every plane is in."""
        self.planes[self.filled] = labels
        self.filled += 1
        return self.filled == len(self.planes)

    def hyperstack(self) -> tuple[np.ndarray, str]:
        axes = self.plane.stack_axes
        if axes in ("T", "Z", "TZ"):  # the axes and order ImageJ's hyperstacks know
            shape = (*self.plane.stack_shape, *self.planes.shape[1:])
            return self.planes.reshape(shape), f"{axes}YX"
        return self.planes, "ZYX"


#: what ``nucseg predict --outputs`` writes (see the module docstring)
OUTPUTS = ("tif", "csv", "roi", "geojson")


def predict_images(
    segmenter: Segmenter,
    images: list[Path | str],
    out_dir: Path | str,
    *,
    outputs: tuple[str, ...] = ("tif", "csv"),
    pixel_size_um: float | None = None,
    channel: int | None = None,
    progress: Callable[[int, int, str, int, float], None] | None = None,
) -> dict[str, int]:
    """Segment every image file (every plane of a stack) with ``segmenter``, one at a
    time, and write ``outputs`` (see the module docstring); ``channel``: the nuclear
    stain's channel of multi-channel images.  Every file's layout is checked before the
    first is segmented.  ``progress(done, total, name, nuclei, seconds)`` is called after
    each image.  Returns the number of nuclei found per image id."""
    unknown = sorted(set(outputs) - set(OUTPUTS))
    if unknown:
        raise NucsegInputError(f"--outputs: {unknown[0]!r} is not one of {', '.join(OUTPUTS)}")
    if pixel_size_um is not None and pixel_size_um <= 0:
        raise NucsegInputError(f"--pixel-size: {pixel_size_um} is not a positive size")
    out_dir = Path(out_dir)
    planes = [plane for path in images for plane in image_planes(path, channel)]
    stems = [plane.path.stem + plane.suffix for plane in planes]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise NucsegInputError(f"two input images share the id {duplicates[0]!r} (file stem)")
    if "tif" in outputs:  # a stack's label file is named by its file, not its planes
        writers: dict[str, set[Path]] = {}
        for stem, plane in zip(stems, planes, strict=True):
            writers.setdefault(plane.path.stem if plane.stack_axes else stem, set()).add(plane.path)
        shared = sorted(name for name, paths in writers.items() if len(paths) > 1)
        if shared:
            raise NucsegInputError(
                f"two input images would both write {shared[0]}.tif: "
                f"{', '.join(sorted(map(str, writers[shared[0]])))}"
            )
    counts, encodings, tables, shapes = {}, {}, [], {}
    stacks: dict[Path, LabelStack] = {}  # a stack's labels until its last plane
    with contextlib.ExitStack() as cleanup:  # their spool folder goes whatever happens
        spool = None
        for done, (stem, plane) in enumerate(zip(stems, planes, strict=True), 1):
            start = time.perf_counter()
            name = f"{plane.path}{f' plane {plane.suffix[1:]}' if plane.suffix else ''}"
            image = check_image(plane.read(), name)
            labels = segmenter.segment(image, name=name)
            counts[stem], shapes[stem] = int(labels.max()), labels.shape
            measurements = measure_nuclei(stem, labels, image)
            if "tif" in outputs and plane.stack_axes:
                if spool is None:
                    out_dir.mkdir(parents=True, exist_ok=True)
                    folder = tempfile.TemporaryDirectory(prefix=".labels-", dir=out_dir)
                    spool = Path(cleanup.enter_context(folder))
                if plane.path not in stacks:
                    stacks[plane.path] = LabelStack(plane, labels.shape, spool)
                if stacks[plane.path].add(labels):
                    labels_of_stack, axes = stacks.pop(plane.path).hyperstack()
                    path = out_dir / f"{plane.path.stem}.tif"
                    write_label_tiff(labels_of_stack, path, pixel_size_um, axes)
            elif "tif" in outputs:
                write_label_tiff(labels, out_dir / f"{stem}.tif", pixel_size_um)
            if "roi" in outputs:
                write_imagej_rois(labels, out_dir / f"{stem}_rois.zip")
            if "geojson" in outputs:
                per_nucleus = measurements.drop(columns="image").set_index("label")
                write_geojson(labels, out_dir / f"{stem}.geojson", per_nucleus)
            if "csv" in outputs:
                encodings[stem] = encode_labels(labels)
                tables.append(measurements)
            log.info("%s: %d nuclei", name, counts[stem])
            if progress:
                progress(done, len(planes), name, counts[stem], time.perf_counter() - start)
    if "csv" in outputs:
        write_encoded_submission(encodings, out_dir / "submission.csv")
        table = pd.concat(tables, ignore_index=True)
        write_table(table, out_dir / "measurements.csv", sep=",")
        write_table(summarize_nuclei(table, shapes), out_dir / "summary.csv", sep=",")
    return counts
