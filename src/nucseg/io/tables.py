"""Tab-separated tables (manifests, logs, scores)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nucseg.io.atomic import atomic_path


def write_table(table: pd.DataFrame, path: Path | str) -> None:
    """Write a TSV atomically (no index, '\\n' line ends)."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, lineterminator="\n")
