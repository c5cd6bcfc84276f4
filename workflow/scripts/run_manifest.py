"""Record what produced this run in results/run_manifest.json."""

from nucseg.provenance import write_run_manifest
from nucseg.scripting import run_script


def main(snakemake):
    write_run_manifest(
        snakemake.config,
        dict(zip(snakemake.params.versions, snakemake.input.datasets, strict=True)),
        snakemake.params.code,
        snakemake.output[0],
        dict(zip(snakemake.params.pretrained, snakemake.input.pretrained, strict=True)),
    )


run_script(main, snakemake)  # noqa: F821
