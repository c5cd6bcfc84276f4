"""Tab-separated tables (manifests, logs, scores)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nucseg.io.atomic import atomic_path


def write_table(table: pd.DataFrame, path: Path | str, sep: str = "\t") -> None:
    """Write a TSV (or, with ``sep=","``, a CSV) atomically (no index, '\\n' line ends)."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep=sep, index=False, lineterminator="\n")
