"""A byte-reproducible container of named arrays (an ``.npz`` with fixed zip timestamps).

``numpy.savez`` stamps the current time into the zip entries, so the same arrays give
different bytes on every run; this writer does not.  Files load with ``numpy.load``.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from nucseg.io.atomic import atomic_path

_EPOCH = (1980, 1, 1, 0, 0, 0)


def save_arrays(path: Path | str, arrays: dict[str, np.ndarray], *, compress: bool = True) -> None:
    """Write ``arrays`` (keys sorted) to ``path`` atomically and deterministically."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=method) as archive:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.compress_type = method
            archive.writestr(info, buffer.getvalue())


def load_arrays(path: Path | str) -> dict[str, np.ndarray]:
    """Load every array of a file written by :func:`save_arrays` (no pickle)."""
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}
