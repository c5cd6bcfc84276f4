"""Shared timing helper of the benchmark scripts (run as ``python benchmarks/<name>.py``,
so this folder is on the import path)."""

from __future__ import annotations

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
