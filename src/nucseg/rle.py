"""Run-length encoding in the Kaggle 2018 Data Science Bowl convention.

Pixels are numbered **1-based, top-to-bottom then left-to-right** (column-major, i.e. the
flattening order of ``mask.T``).  An encoding is a space-separated list of ``start length``
pairs with starts strictly increasing and runs not touching or overlapping
(``start[i] + length[i] < start[i+1]`` once runs are merged, which the encoder guarantees).

Example (H=3, W=2), pixel numbers on the right::

    mask            numbering
    [[0, 1],        [[1, 4],
     [1, 1],         [2, 5],
     [1, 0]]         [3, 6]]

    foreground pixels are 2, 3, 4, 5  ->  one run: "2 4"
"""

from __future__ import annotations

import numpy as np

from nucseg.errors import NucsegInputError


def encode_labels(instance_labels: np.ndarray) -> dict[int, str]:
    """Encode every nucleus of an instance-label image in one vectorised pass.

    Returns ``{label: "start length ..."}`` for each label > 0 present, in increasing label
    order.  Cost is O(pixels) plus O(runs), independent of the number of nuclei.
    """
    if instance_labels.ndim != 2:
        raise ValueError(f"instance labels must be 2-D, got shape {instance_labels.shape}")
    flat = np.ascontiguousarray(instance_labels.T).ravel()
    n = flat.size
    if n == 0:
        return {}
    # Run boundaries: index 0, every index where the value changes, and n.
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [n]))
    values = flat[starts]
    keep = values > 0
    starts, lengths, values = starts[keep], (ends - starts)[keep], values[keep]
    order = np.argsort(values, kind="stable")  # stable keeps each label's runs in pixel order
    starts, lengths, values = starts[order] + 1, lengths[order], values[order]
    labels, first = np.unique(values, return_index=True)
    pairs = np.stack([starts, lengths], axis=1)
    bounds = np.append(first, values.size)
    return {
        int(label): " ".join(map(str, pairs[bounds[i] : bounds[i + 1]].ravel().tolist()))
        for i, label in enumerate(labels)
    }


def encode_mask(mask: np.ndarray) -> str:
    """Encode one binary mask (any nonzero pixel is foreground)."""
    return encode_labels((np.asarray(mask) != 0).astype(np.uint8)).get(1, "")


def parse_rle(
    rle: str, shape: tuple[int, int], *, where: str = "RLE"
) -> tuple[np.ndarray, np.ndarray]:
    """Parse and validate an RLE string; return 0-based ``(starts, lengths)``.

    Raises :class:`NucsegInputError` (naming ``where``) when the string is malformed, has
    non-positive or unsorted pairs, overlapping runs, or runs outside an image of ``shape``.
    """
    text = rle.strip() if isinstance(rle, str) else ""
    if not text:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    try:
        numbers = np.array(text.split(), dtype=np.int64)
    except ValueError:
        raise NucsegInputError(f"{where}: encoding contains a non-integer token") from None
    if numbers.size % 2:
        raise NucsegInputError(f"{where}: encoding has an odd number of values ({numbers.size})")
    starts, lengths = numbers[0::2], numbers[1::2]
    if (starts < 1).any() or (lengths < 1).any():
        raise NucsegInputError(f"{where}: starts and lengths must be positive integers")
    if (np.diff(starts) <= 0).any():
        raise NucsegInputError(f"{where}: pairs are not sorted by start")
    ends = starts + lengths  # exclusive, 1-based
    if (ends[:-1] > starts[1:]).any():
        raise NucsegInputError(f"{where}: runs overlap")
    n_pixels = shape[0] * shape[1]
    if ends[-1] - 1 > n_pixels:
        raise NucsegInputError(
            f"{where}: run ends at pixel {ends[-1] - 1}, beyond the {shape[0]}x{shape[1]} image"
        )
    return starts - 1, lengths


def decode_rle(rle: str, shape: tuple[int, int], *, where: str = "RLE") -> np.ndarray:
    """Decode one RLE string to a boolean ``H x W`` mask (validating it, see :func:`parse_rle`)."""
    starts, lengths = parse_rle(rle, shape, where=where)
    height, width = shape
    edges = np.zeros(height * width + 1, np.int32)
    np.add.at(edges, starts, 1)
    np.add.at(edges, starts + lengths, -1)
    return (np.cumsum(edges[:-1]) > 0).reshape(width, height).T


def decode_labels(rles: list[str], shape: tuple[int, int], *, where: str = "RLE") -> np.ndarray:
    """Decode a list of nucleus encodings of one image to instance labels 1..N (in list order).

    Empty strings are skipped.  Raises :class:`NucsegInputError` if two nuclei overlap.
    """
    height, width = shape
    flat = np.zeros(height * width, np.int32)
    label = 0
    for rle in rles:
        starts, lengths = parse_rle(rle, shape, where=where)
        if starts.size == 0:
            continue
        label += 1
        index = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths) + np.arange(
            lengths.sum()
        )
        if flat[index].any():
            raise NucsegInputError(f"{where}: nucleus {label} overlaps an earlier nucleus")
        flat[index] = label
    return flat.reshape(width, height).T
