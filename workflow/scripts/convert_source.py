"""Read, check and (optionally) crop one raw source."""

from pathlib import Path

from nucseg.datasets import SourceSpec, convert_source
from nucseg.scripting import run_script


def main(snakemake):
    source = SourceSpec.from_config(snakemake.params.name, snakemake.params.spec)
    convert_source(source, Path(snakemake.output.manifest).parent)


run_script(main, snakemake)  # noqa: F821
