"""Leakage-safe cross-validation folds, materialised as hardlinks.

Folds are grouped by ``origin`` (crops or frames of one original image never fall on both
sides) and stratified by ``category`` (each fold gets its share of every category).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def assign_folds(manifest: pd.DataFrame, n_folds: int, seed: int) -> pd.Series:
    """Fold index (0..n_folds-1) of every row, as a Series indexed like ``manifest``.

    Within each category, origins are shuffled with ``seed`` and each goes to the fold that
    currently holds the fewest images of that category (ties: lowest fold), which balances
    image counts when origins have different numbers of crops.
    """
    if n_folds < 2:
        raise ValueError("assign_folds needs at least 2 folds; use a hold-out split for one")
    rng = np.random.default_rng(seed)
    sizes = manifest.groupby("origin", sort=True).size()
    categories = manifest.groupby("origin", sort=True)["category"].first()
    fold_of_origin: dict[str, int] = {}
    for _category, origins in categories.groupby(categories, sort=True):
        load = np.zeros(n_folds, int)
        for origin in rng.permutation(origins.index.to_numpy()):
            fold = int(np.argmin(load))
            fold_of_origin[origin] = fold
            load[fold] += sizes[origin]
    return manifest["origin"].map(fold_of_origin).astype(int)


def _link_or_copy(source: Path, target: Path) -> bool:
    """Hardlink ``source`` to ``target``; copy when links are impossible. True if linked."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
        return True
    except OSError:
        shutil.copy2(source, target)
        return False


def materialize_fold(
    dataset_dir: Path | str,
    manifest: pd.DataFrame,
    folds: pd.Series,
    fold: int,
    out_dir: Path | str,
) -> dict[str, int]:
    """Write ``<out_dir>/{train,valid}/{images,labels}/`` for ``fold`` as hardlinks into the
    dataset version (a copy, with a warning, where the file system refuses links).

    Deleting ``out_dir`` never touches the originals.  Returns image counts per side.
    """
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    copied = 0
    counts = {"train": 0, "valid": 0}
    for image_id, in_valid in zip(manifest["id"], folds == fold, strict=True):
        side = "valid" if in_valid else "train"
        counts[side] += 1
        for kind, suffix in (("images", ".png"), ("labels", ".tif")):
            source = dataset_dir / kind / f"{image_id}{suffix}"
            copied += not _link_or_copy(source, out_dir / side / kind / f"{image_id}{suffix}")
    if copied:
        log.warning("%d files copied instead of hardlinked (file system without links?)", copied)
    return counts
