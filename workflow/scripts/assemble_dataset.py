"""Assemble one dataset version from its converted sources."""

from pathlib import Path

from nucseg.datasets import assemble_dataset
from nucseg.normalize import NormalizeConfig
from nucseg.scripting import run_script


def main(snakemake):
    assemble_dataset(
        snakemake.params.source_dirs,
        Path(snakemake.output.manifest).parent,
        **snakemake.params.selection,
        normalize=NormalizeConfig(**snakemake.params.normalize),
    )


run_script(main, snakemake)  # noqa: F821
