"""Normalise the test images and write their manifest."""

from pathlib import Path

from nucseg.datasets import prepare_test_set
from nucseg.normalize import NormalizeConfig
from nucseg.scripting import run_script


def main(snakemake):
    prepare_test_set(
        snakemake.params.test_sets,
        Path(snakemake.output.manifest).parent,
        NormalizeConfig(**snakemake.params.normalize),
    )


run_script(main, snakemake)  # noqa: F821
