"""Cell Tracking Challenge 2D sequences (e.g. Fluo-N2DH-*).

Layout::

    <root>/01/t000.tif ...              8- or 16-bit frames (3 or 4 digits)
    <root>/01_GT/SEG/man_seg000.tif ... instance labels for some frames only

Only frames with a segmentation label image are listed, and of those only the fully
annotated ones: the challenge's SEG ground truth labels every nucleus of some frames but
only one to three of others, and those would teach a network that real nuclei are
background.  A frame counts as fully annotated when its labels cover at least
``min_coverage`` of its bright foreground (Otsu threshold of the lightly smoothed frame;
on Fluo-N2DH-GOWT1 full frames reach 0.99, partial ones at most 0.02), or when it is named
in ``frames``.  The frames of one sequence share an origin, so that a split keeps a
sequence on one side.
"""

from __future__ import annotations

import logging
import re
from functools import partial
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from nucseg.errors import NucsegInputError
from nucseg.io.images import read_image, read_label_image
from nucseg.io.kaggle import check_image_id
from nucseg.io.sources import SourceItem, SourceOptions

log = logging.getLogger(__name__)

_FRAME = re.compile(r"^t(\d+)\.tif$")
_SEQUENCE = re.compile(r"^\d+$")


def annotated_fraction(frame: np.ndarray, labels: np.ndarray) -> float:
    """The fraction of a frame's bright foreground (Otsu on the frame smoothed with a
    2-pixel gaussian) that carries a label; 0 for a flat frame."""
    gray = frame.astype(np.float32)
    gray = gray.max(axis=2) if gray.ndim == 3 else gray
    smooth = ndi.gaussian_filter(gray, 2)
    if smooth.max() - smooth.min() < 1e-6:
        return 0.0
    foreground = smooth > threshold_otsu(smooth)
    return float((foreground & (labels > 0)).sum() / max(1, foreground.sum()))


def list_items(root: Path, options: SourceOptions) -> list[SourceItem]:
    """List the fully annotated frames of every sequence of a CTC dataset folder."""
    if not root.is_dir():
        raise NucsegInputError(
            f"{root}: folder not found (expected a Cell Tracking Challenge dataset)"
        )
    items, found, dropped = [], set(), []
    for sequence in sorted(p for p in root.iterdir() if p.is_dir() and _SEQUENCE.match(p.name)):
        seg_dir = root / f"{sequence.name}_GT" / "SEG"
        if not seg_dir.is_dir():
            continue  # a sequence without segmentation ground truth
        for frame_path in sorted(sequence.iterdir()):
            match = _FRAME.match(frame_path.name)
            if not match:
                continue
            number = match.group(1)
            label_path = seg_dir / f"man_seg{number}.tif"
            if not label_path.is_file():
                continue  # only some frames are annotated
            found.add(number)
            if options.frames is not None:
                if number not in options.frames:
                    continue
            else:
                frame = read_image(frame_path)
                coverage = annotated_fraction(frame, read_label_image(label_path, frame.shape[:2]))
                if coverage < options.min_coverage:
                    dropped.append(f"{sequence.name}/t{number} ({coverage:.2f})")
                    continue
            image_id = check_image_id(f"{root.name}_{sequence.name}_t{number}", str(frame_path))
            origin = f"{root.name}_{sequence.name}"
            items.append(
                SourceItem(image_id, origin, frame_path, partial(read_label_image, label_path))
            )
    if options.frames is not None:
        missing = sorted(set(options.frames) - found)
        if missing:
            raise NucsegInputError(
                f"{root}: frames {missing} named in the source's frames have no annotated "
                "frame (01/tNNN.tif with 01_GT/SEG/man_segNNN.tif)"
            )
    if dropped:
        log.info(
            "%s: %d partially annotated frames left out (labelled fraction of the foreground "
            "below %g): %s",
            root,
            len(dropped),
            options.min_coverage,
            ", ".join(dropped),
        )
    if not items:
        raise NucsegInputError(
            f"{root}: no fully annotated frames (expected 01/t000.tif with "
            "01_GT/SEG/man_seg000.tif labelling every nucleus)"
        )
    return items
