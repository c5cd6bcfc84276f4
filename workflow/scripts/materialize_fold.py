"""Materialise one cross-validation fold of a dataset version as hardlinks."""

import logging
from pathlib import Path

from nucseg.datasets import read_manifest
from nucseg.folds import fold_sides, materialize_fold
from nucseg.scripting import run_script


def main(snakemake):
    cv = snakemake.params.cv
    manifest = read_manifest(snakemake.input.manifest)
    sides = fold_sides(
        manifest,
        folds=cv["folds"],
        fold=snakemake.params.fold,
        valid_fraction=cv["valid_fraction"],
        seed=cv["seed"],
        group=cv["group"],
        train_only=cv["train_only"],
    )
    counts = materialize_fold(
        Path(snakemake.input.manifest).parent, manifest, sides, snakemake.output[0]
    )
    logging.getLogger("nucseg").info("fold %d: %s", snakemake.params.fold, counts)


run_script(main, snakemake)  # noqa: F821
