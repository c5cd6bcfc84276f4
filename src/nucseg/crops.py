"""Cropping large annotated images into training tiles, keeping provenance."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from nucseg.labels import relabel_sequential


def crop_starts(length: int, width: int, step: int) -> list[int]:
    """Start offsets of windows of ``width`` every ``step`` along ``length``.

    The last window is aligned to the end so the whole length is covered; a length not
    larger than ``width`` gives one window at 0.
    """
    if width <= 0 or step <= 0:
        raise ValueError("crop width and step must be positive")
    if length <= width:
        return [0]
    starts = list(range(0, length - width + 1, step))
    if starts[-1] != length - width:
        starts.append(length - width)
    return starts


@dataclass(frozen=True)
class Crop:
    """One tile: its id suffix, top-left corner, pixels and relabelled instances."""

    suffix: str
    top: int
    left: int
    image: np.ndarray
    labels: np.ndarray


def crop_image(image: np.ndarray, labels: np.ndarray, *, width: int, step: int) -> Iterator[Crop]:
    """Yield the ``width x width`` tiles (every ``step`` pixels) that contain a nucleus.

    Labels are renumbered 1..N inside each tile; tiles without any nucleus are dropped.  The
    suffix ``_r<top>_c<left>`` keeps where the tile came from.
    """
    height, width_total = labels.shape
    for top in crop_starts(height, width, step):
        for left in crop_starts(width_total, width, step):
            window = (slice(top, top + width), slice(left, left + width))
            tile_labels = labels[window]
            if not tile_labels.any():
                continue
            renumbered = relabel_sequential(tile_labels)[0].astype(np.int32)
            yield Crop(f"_r{top}_c{left}", top, left, image[window], renumbered)
