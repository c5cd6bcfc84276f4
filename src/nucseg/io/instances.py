"""Combining per-nucleus masks into one instance-label image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nucseg.errors import NucsegInputError
from nucseg.labels import relabel_sequential

OVERLAP_POLICIES = ("larger", "error")


@dataclass(frozen=True)
class NucleusMask:
    """One nucleus: a boolean mask inside a window of the image, and where it came from."""

    window: tuple[slice, slice]
    mask: np.ndarray
    where: str  # file (and region) named in errors

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def crop_to_mask(mask: np.ndarray, where: str) -> NucleusMask:
    """Wrap a full-size boolean mask as a :class:`NucleusMask` cropped to its bounding box."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise NucsegInputError(f"{where}: mask is empty (no nucleus pixel)")
    window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    return NucleusMask(window, mask[window], where)


def paint_instances(
    nuclei: list[NucleusMask], shape: tuple[int, int], *, overlap: str = "larger"
) -> np.ndarray:
    """Instance labels 1..N (numbered in input order) from per-nucleus masks.

    Where nuclei overlap, ``overlap='larger'`` gives contested pixels to the larger nucleus
    (ties: the later one), deterministically; ``'error'`` raises naming the nucleus.  A
    nucleus that loses all its pixels disappears and labels are renumbered.
    """
    if overlap not in OVERLAP_POLICIES:
        raise ValueError(f"overlap policy must be one of {OVERLAP_POLICIES}, not {overlap!r}")
    labels = np.zeros(shape, np.int32)
    areas = np.array([n.area for n in nuclei])
    for index in np.argsort(areas, kind="stable"):  # larger nuclei painted last win
        nucleus = nuclei[index]
        region = labels[nucleus.window]
        if overlap == "error" and region[nucleus.mask].any():
            raise NucsegInputError(
                f"{nucleus.where}: nucleus overlaps another one of the same image"
            )
        region[nucleus.mask] = index + 1
    return relabel_sequential(labels)[0].astype(np.int32)
