"""Cell Tracking Challenge 2D sequences (e.g. Fluo-N2DH-*).

Layout::

    <root>/01/t000.tif ...              16-bit frames (3 or 4 digits)
    <root>/01_GT/SEG/man_seg000.tif ... instance labels for some frames only

Only frames with a segmentation label image are listed; labels are kept as instances.  The
frames of one sequence share an origin, so that a split keeps a sequence on one side.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from nucseg.errors import NucsegInputError
from nucseg.io.images import read_label_image
from nucseg.io.kaggle import check_image_id
from nucseg.io.sources import SourceItem, SourceOptions

_FRAME = re.compile(r"^t(\d+)\.tif$")
_SEQUENCE = re.compile(r"^\d+$")


def list_items(root: Path, options: SourceOptions) -> list[SourceItem]:
    """List the annotated frames of every sequence of a CTC dataset folder."""
    if not root.is_dir():
        raise NucsegInputError(
            f"{root}: folder not found (expected a Cell Tracking Challenge dataset)"
        )
    items = []
    for sequence in sorted(p for p in root.iterdir() if p.is_dir() and _SEQUENCE.match(p.name)):
        seg_dir = root / f"{sequence.name}_GT" / "SEG"
        if not seg_dir.is_dir():
            continue  # a sequence without segmentation ground truth
        for frame_path in sorted(sequence.iterdir()):
            match = _FRAME.match(frame_path.name)
            if not match:
                continue
            label_path = seg_dir / f"man_seg{match.group(1)}.tif"
            if not label_path.is_file():
                continue  # only some frames are annotated
            image_id = check_image_id(
                f"{root.name}_{sequence.name}_t{match.group(1)}", str(frame_path)
            )
            origin = f"{root.name}_{sequence.name}"
            items.append(
                SourceItem(image_id, origin, frame_path, partial(read_label_image, label_path))
            )
    if not items:
        raise NucsegInputError(
            f"{root}: no annotated frames (expected 01/t000.tif with 01_GT/SEG/man_seg000.tif)"
        )
    return items
