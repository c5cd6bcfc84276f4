"""The scores page and chart of the report."""

import pandas as pd

from nucseg.report_pages import dsb_chart, scores_page
from nucseg.scripting import run_script


def main(snakemake):
    scores = pd.read_csv(snakemake.input[0], sep="\t", dtype={"image_id": str})
    sets = ", ".join(f"{name} ({folder})" for name, folder in snakemake.params.test_sets.items())
    scores_page(scores, snakemake.output.page, sets)
    dsb_chart(scores, snakemake.output.chart)


run_script(main, snakemake)  # noqa: F821
