"""Choosing and weighting the images of a dataset version.

Include/exclude lists are CSV files whose columns are manifest columns (``id``, ``source``,
``origin``, ``category``); a row selects the images whose values equal all of the row's
non-empty cells.  For example a whitelist with the single column ``id`` lists images, and a
blacklist row ``source=dsb,category=histology`` drops the H&E images of one source.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nucseg.errors import NucsegInputError

SELECTABLE_COLUMNS = ("id", "source", "origin", "category")


class RowSelector:
    """The rows of an include or exclude CSV, matched against manifest rows."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if not self.path.is_file():
            raise NucsegInputError(f"{self.path}: selection CSV not found")
        try:
            table = pd.read_csv(self.path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise NucsegInputError(f"{self.path}: not a readable CSV ({error})") from None
        unknown = [c for c in table.columns if c not in SELECTABLE_COLUMNS]
        if unknown or table.columns.empty:
            raise NucsegInputError(
                f"{self.path}: column(s) {unknown or '(none)'} unknown; "
                f"use any of {SELECTABLE_COLUMNS}"
            )
        self.rules = [{k: v for k, v in row.items() if v != ""} for row in table.to_dict("records")]

    def matches(self, row: dict) -> bool:
        """True if any rule's cells all equal the row's values."""
        return any(all(str(row[k]) == v for k, v in rule.items()) for rule in self.rules)


def balance_weights(
    manifest: pd.DataFrame,
    column: str | None,
    sizes: np.ndarray | None = None,
    shares: dict[str, float] | None = None,
) -> np.ndarray:
    """Sampling weight per row so that every group of ``column`` weighs the same in total
    once each row's weight is multiplied by its size (oversampling as weights, not copies);
    mean weight 1.  Training draws crops uniformly over pixels times the weight, so with
    ``sizes`` = pixels per image every group gets the same share of crops, whatever its image
    sizes (with image counts instead, 12 brightfield images of 1.4 M pixels drew 76 % of
    the crops of DSB2018).  ``shares`` makes the groups' totals proportional to relative
    weights instead (groups not named weigh 1): ``{"histology": 2}`` with three categories
    gives H&E half of the crops.  ``sizes`` defaults to 1 per row; ``column=None``: all ones.
    """
    if shares and column is None:
        raise NucsegInputError("balance shares need a balance column")
    if column is None or manifest.empty:
        return np.ones(len(manifest))
    if column not in manifest.columns:
        raise NucsegInputError(f"balance: unknown manifest column {column!r}")
    shares = shares or {}
    groups = manifest[column].astype(str)
    unknown = sorted(set(shares) - set(groups))
    if unknown:
        raise NucsegInputError(
            f"balance shares: no image has {column} {unknown}; present: {sorted(set(groups))}"
        )
    if any(not share > 0 for share in shares.values()):
        raise NucsegInputError(f"balance shares must be positive, not {shares}")
    sizes = np.ones(len(manifest)) if sizes is None else np.asarray(sizes, float)
    group_totals = pd.Series(sizes, index=manifest.index).groupby(groups).transform("sum")
    share = groups.map(lambda group: float(shares.get(group, 1.0))).to_numpy(float)
    weights = share / group_totals.to_numpy(float)
    return weights * len(manifest) / weights.sum()
