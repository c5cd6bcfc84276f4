"""Trained models (or an ensemble of them) on image files, outside Snakemake.

Used by ``nucseg predict``.  Each image is read in any supported format (keeping its bit
depth) and segmented by a :class:`nucseg.segmenter.Segmenter` (models loaded once), and
written as
``<out>/<stem>.tif`` (instance labels, 16-bit unless more nuclei: they open in Fiji and
napari as they are) plus one ``<out>/submission.csv`` (``ImageId`` = file stem, RLE 1-based
column-major, see :mod:`nucseg.rle`), ``<out>/measurements.csv`` (one row per nucleus) and
``<out>/summary.csv`` (one row per image), see :mod:`nucseg.measure`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from nucseg.errors import NucsegInputError
from nucseg.io.images import read_image, write_tiff
from nucseg.io.kaggle import IMAGE_SUFFIXES
from nucseg.io.tables import write_table
from nucseg.measure import measure_instances
from nucseg.segmenter import Segmenter, check_image
from nucseg.submission import write_submission

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


def predict_images(
    segmenter: Segmenter, images: list[Path | str], out_dir: Path | str
) -> dict[str, int]:
    """Segment every image file with ``segmenter``; write the outputs of the module
    docstring; return the number of nuclei found per image id (file stem)."""
    out_dir = Path(out_dir)
    stems = [Path(p).stem for p in images]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise NucsegInputError(f"two input images share the id {duplicates[0]!r} (file stem)")
    instances, counts = {}, {}
    for stem, image_path in zip(stems, images, strict=True):
        labels = segmenter.segment(check_image(read_image(image_path), str(image_path)))
        dtype = np.uint16 if labels.max() < 2**16 else np.uint32
        write_tiff(labels.astype(dtype), out_dir / f"{stem}.tif")
        instances[stem], counts[stem] = labels, int(labels.max())
        log.info("%s: %d nuclei", image_path, counts[stem])
    write_submission(instances, out_dir / "submission.csv")
    table, summary = measure_instances(instances, dict(zip(stems, map(Path, images), strict=True)))
    write_table(table, out_dir / "measurements.csv", sep=",")
    write_table(summary, out_dir / "summary.csv", sep=",")
    return counts
