"""Normalise the images of one dataset version."""

from pathlib import Path

from nucseg.datasets import normalize_dataset
from nucseg.normalize import NormalizeConfig
from nucseg.scripting import run_script


def main(snakemake):
    normalize_dataset(
        Path(snakemake.input.manifest).parent,
        snakemake.output[0],
        NormalizeConfig(**snakemake.params.normalize),
    )


run_script(main, snakemake)  # noqa: F821
