"""Score every ensemble's submission against the solution CSV."""

from nucseg.scripting import run_script
from nucseg.submission import score_submissions


def main(snakemake):
    scores = score_submissions(
        dict(zip(snakemake.params.ensembles, snakemake.input.submissions, strict=True)),
        list(snakemake.input.solution),
        snakemake.input.manifest,
        snakemake.output[0],
    )
    means = scores[(scores.image_id == "mean") & (scores.category == "all")]
    for row in means[means.source == "all"].itertuples():
        print(f"nucseg: {row.ensemble}: mean DSB score {row.dsb:.4f}")


run_script(main, snakemake)  # noqa: F821
