"""One registry of raw source formats: each lists a source folder as :class:`SourceItem`s.

Formats (config ``sources.<name>.format``):

- ``kaggle_stage1``: ``<id>/images/<id>.png`` + ``<id>/masks/*.png`` (:mod:`nucseg.io.kaggle`)
- ``monuseg``: H&E ``.tif`` tiles + Aperio ImageScope ``.xml`` polygons (:mod:`nucseg.io.monuseg`)
- ``ctc``: Cell Tracking Challenge 2D ``01/t000.tif`` + ``01_GT/SEG/man_seg000.tif``
  (:mod:`nucseg.io.ctc`); only annotated frames are used
- ``folder``: ``<name>.png|tif`` with ``<name>_label.tif`` instance labels (:mod:`nucseg.io.folder`)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nucseg.errors import NucsegInputError


@dataclass(frozen=True)
class SourceOptions:
    """Per-source reading options (config ``sources.<name>``).

    ``overlap``: policy for overlapping nuclei (:func:`nucseg.io.instances.paint_instances`).
    ``labels_csv``: for ``kaggle_stage1``, read nuclei from a ``ImageId,EncodedPixels``
    labels CSV (stage1_train_labels.csv) instead of ``masks/*.png``.
    ``frames``: for ``ctc``, the frame numbers to use (e.g. ``("021", "031")``), all of them
    annotated; ``min_coverage``: for ``ctc`` without ``frames``, keep an annotated frame
    only when its labels cover at least this fraction of the frame's bright foreground
    (partially annotated frames would teach that unlabelled nuclei are background).
    """

    overlap: str = "larger"
    labels_csv: Path | None = None
    frames: tuple[str, ...] | None = None
    min_coverage: float = 0.5


@dataclass(frozen=True)
class SourceItem:
    """One annotated image of a source.

    ``read_labels(shape)`` returns its int32 instance labels for an image of ``shape``
    (raising :class:`NucsegInputError` naming the file when they are bad).  ``origin`` names
    the original acquisition, so that crops or frames of one original can be kept together.
    """

    image_id: str
    origin: str
    image_path: Path
    read_labels: Callable[[tuple[int, int]], np.ndarray]


def _registry() -> dict[str, Callable[[Path, SourceOptions], list[SourceItem]]]:
    from nucseg.io import ctc, folder, kaggle, monuseg

    return {
        "kaggle_stage1": kaggle.list_items,
        "monuseg": monuseg.list_items,
        "ctc": ctc.list_items,
        "folder": folder.list_items,
    }


SOURCE_FORMATS = ("kaggle_stage1", "monuseg", "ctc", "folder")


def list_source(
    format_name: str, path: Path | str, options: SourceOptions | None = None
) -> list[SourceItem]:
    """List the annotated images of a source folder in ``format_name``, sorted by id."""
    readers = _registry()
    if format_name not in readers:
        raise NucsegInputError(
            f"source format {format_name!r} is unknown; expected one of {SOURCE_FORMATS}"
        )
    options = options or SourceOptions()
    if options.labels_csv is not None and format_name != "kaggle_stage1":
        raise NucsegInputError(f"{path}: labels_csv is only read for format kaggle_stage1")
    if options.frames is not None and format_name != "ctc":
        raise NucsegInputError(f"{path}: frames is only read for format ctc")
    items = readers[format_name](Path(path), options)
    return sorted(items, key=lambda item: item.image_id)
