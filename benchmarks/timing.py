"""Shared timing helper of the benchmark scripts (run as ``python benchmarks/<name>.py``,
so this folder is on the import path)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable


def best_of(function: Callable[[], object], repeats: int = 5) -> float:
    """The shortest of ``repeats`` wall-clock timings of ``function()``, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


@contextlib.contextmanager
def replaced(module, **attributes):
    """``module``'s ``attributes`` set to the given values inside the block, restored after:
    how a benchmark runs the earlier implementation of a function as its baseline."""
    saved = {name: getattr(module, name) for name in attributes}
    for name, value in attributes.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)
