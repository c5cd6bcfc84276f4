"""Leakage-safe cross-validation folds, materialised as hardlinks.

Folds are grouped by ``origin`` (crops or frames of one original image never fall on both
sides), or by ``acquisition`` (images of one microscope setting, see
:mod:`nucseg.acquisitions`: what a model meets on images from elsewhere), and stratified by
``category`` (each fold gets its share of every category).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from nucseg.datasets import IMAGE_SUFFIX
from nucseg.io.atomic import link_or_copy
from nucseg.io.tables import write_table

log = logging.getLogger(__name__)


GROUPS = ("origin", "acquisition")


def assign_folds(
    manifest: pd.DataFrame, n_folds: int, seed: int, group: str = "origin"
) -> pd.Series:
    """Fold index (0..n_folds-1) of every row, as a Series indexed like ``manifest``.

    Within each category, the groups (values of column ``group``: ``origin`` or
    ``acquisition``) are shuffled with ``seed`` and each goes to the fold that currently
    holds the fewest images of that category (ties: lowest fold), which balances image
    counts when groups have different numbers of images.
    """
    if n_folds < 2:
        raise ValueError("assign_folds needs at least 2 folds; use a hold-out split for one")
    rng = np.random.default_rng(seed)
    sizes = manifest.groupby(group, sort=True).size()
    categories = manifest.groupby(group, sort=True)["category"].first()
    fold_of_group: dict[str, int] = {}
    for _category, names in categories.groupby(categories, sort=True):
        load = np.zeros(n_folds, int)
        for name in rng.permutation(names.index.to_numpy()):
            fold = int(np.argmin(load))
            fold_of_group[name] = fold
            load[fold] += sizes[name]
    return manifest[group].map(fold_of_group).astype(int)


def holdout_split(
    manifest: pd.DataFrame, valid_fraction: float, seed: int, group: str = "origin"
) -> tuple[list[str], list[str]]:
    """Split ids into (train, valid), grouped by column ``group`` and stratified by
    ``category``.

    All images of one group fall on the same side.  Each category contributes
    ``round(valid_fraction * n_groups)`` groups to validation (at least one when it has two
    or more groups and ``valid_fraction > 0``).
    """
    groups = manifest.groupby(group, sort=True)["category"].first()
    is_valid = manifest[group].isin(held_out_names(groups, valid_fraction, seed))
    return manifest.loc[~is_valid, "id"].tolist(), manifest.loc[is_valid, "id"].tolist()


def held_out_names(strata: pd.Series, fraction: float, seed: int) -> set:
    """The names (the index of ``strata``, whose values are their strata) a seeded hold-out
    of ``fraction`` takes: ``round(fraction * n)`` of each stratum's ``n`` names, at least
    one when the stratum has two or more and ``fraction > 0``, never all of them. What
    every split of the three tasks draws (nuclei groups by category, nerve images by
    presence, tissue tiles)."""
    rng = np.random.default_rng(seed)
    strata = strata.sort_index()
    held: set = set()
    for _stratum, members in strata.groupby(strata, sort=True):
        names = members.index.to_numpy()
        n_held = int(round(fraction * names.size))
        if fraction > 0 and names.size >= 2:
            n_held = max(1, min(n_held, names.size - 1))
        held.update(rng.permutation(names)[:n_held].tolist())
    return held


def fold_sides(
    manifest: pd.DataFrame,
    *,
    folds: int,
    fold: int,
    valid_fraction: float,
    seed: int,
    group: str = "origin",
    train_only: Collection[str] = (),
) -> pd.Series:
    """``'train'`` or ``'valid'`` for every row, for fold ``fold`` of a ``folds``-fold split
    grouped by column ``group`` (:data:`GROUPS`).

    ``folds == 1`` is one hold-out split of ``valid_fraction`` (:func:`holdout_split`);
    ``folds >= 2`` uses :func:`assign_folds` and validates on fold ``fold``.  Rows of the
    sources named in ``train_only`` (e.g. generated images) are on the training side of
    every fold, and the other rows are split as they would be without them: a version
    that adds such a source keeps the held-out side of the version without it.
    """
    if not 0 <= fold < folds:
        raise ValueError(f"fold {fold} does not exist in a {folds}-fold split")
    if group not in GROUPS:
        raise ValueError(f"cv.group must be one of {GROUPS}, not {group!r}")
    rows = manifest[~manifest["source"].isin(train_only)] if train_only else manifest
    if folds == 1:
        _train, valid = holdout_split(rows, valid_fraction, seed, group)
        is_valid = manifest["id"].isin(valid)
    else:
        is_valid = (assign_folds(rows, folds, seed, group) == fold).reindex(
            manifest.index, fill_value=False
        )
    return pd.Series(np.where(is_valid, "valid", "train"), index=manifest.index)


FOLD_CONTENTS = (
    ("images", IMAGE_SUFFIX),
    ("labels", ".tif"),
    ("normalized", ".tif"),
    ("targets", ".tif"),
)


def materialize_fold(
    dataset_dir: Path | str, manifest: pd.DataFrame, sides: pd.Series, out_dir: Path | str
) -> dict[str, int]:
    """Write ``<out_dir>/{train,valid}/{images,labels,normalized,targets}/`` as hardlinks into the
    dataset version (a copy, with a warning, where the file system refuses links) and
    ``<out_dir>/split.tsv`` (id, side).

    Deleting ``out_dir`` never touches the originals.  Returns image counts per side.
    """
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    copied = 0
    for image_id, side in zip(manifest["id"], sides, strict=True):
        for kind, suffix in FOLD_CONTENTS:
            source = dataset_dir / kind / f"{image_id}{suffix}"
            copied += not link_or_copy(source, out_dir / side / kind / f"{image_id}{suffix}")
    if copied:
        log.warning("%d files copied instead of hardlinked (file system without links?)", copied)
    split = pd.DataFrame({"id": manifest["id"].to_numpy(), "side": sides.to_numpy()})
    write_table(split, out_dir / "split.tsv")
    return split["side"].value_counts().reindex(["train", "valid"], fill_value=0).to_dict()
