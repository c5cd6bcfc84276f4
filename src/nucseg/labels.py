"""Operations on instance-label images."""

from __future__ import annotations

import numpy as np


def relabel_sequential(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Renumber non-negative integer labels to 1..N in increasing order of their values,
    keeping 0 as background; return ``(int64 labels, N)``.

    A lookup table over label values (one ``np.bincount``, no sort) is used when the
    largest value is not much larger than the image; sparse huge ids fall back to
    ``np.unique``.
    """
    flat = labels.ravel()
    if flat.size == 0:
        return labels.astype(np.int64), 0
    if flat.min() < 0:
        raise ValueError("instance labels must be non-negative")
    top = int(flat.max())
    if top <= 4 * flat.size + 1024:
        present = np.bincount(flat.astype(np.int64, copy=False), minlength=1) > 0
        present[0] = False
        lookup = np.zeros(present.size, np.int64)
        lookup[present] = np.arange(1, int(present.sum()) + 1)
        return lookup[labels], int(present.sum())
    values, inverse = np.unique(flat, return_inverse=True)
    offset = 0 if values[0] == 0 else 1
    return (inverse.reshape(labels.shape) + offset).astype(np.int64), int(values.size - 1 + offset)
