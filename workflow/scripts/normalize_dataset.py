"""Normalise the images of one dataset version and write its intensity statistics."""

from pathlib import Path

from nucseg.datasets import normalize_dataset
from nucseg.io.tables import write_table
from nucseg.normalize import NormalizeConfig
from nucseg.scripting import run_script


def main(snakemake):
    stats = normalize_dataset(
        Path(snakemake.input.manifest).parent,
        snakemake.output.normalized,
        NormalizeConfig(**snakemake.params.normalize),
    )
    write_table(stats, snakemake.output.stats)


run_script(main, snakemake)  # noqa: F821
