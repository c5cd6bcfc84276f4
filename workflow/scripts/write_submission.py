"""Gather instance shards into one validated Kaggle submission CSV."""

from nucseg.scripting import run_script
from nucseg.submission import write_submission_from_shards


def main(snakemake):
    write_submission_from_shards(
        snakemake.input.instances, snakemake.input.manifest, snakemake.output[0]
    )


run_script(main, snakemake)  # noqa: F821
