"""Score every ensemble's submission against the solution CSV."""

from nucseg.scripting import run_script
from nucseg.submission import score_submissions


def main(snakemake):
    score_submissions(
        dict(zip(snakemake.params.ensembles, snakemake.input.submissions, strict=True)),
        snakemake.input.solution,
        snakemake.input.manifest,
        snakemake.output[0],
    )


run_script(main, snakemake)  # noqa: F821
