"""Gather the validation scores per category of every model and ensemble."""

from nucseg.io.tables import write_table
from nucseg.scripting import run_script
from nucseg.tuning import validation_table


def main(snakemake):
    paths = dict(zip(snakemake.params.entries, snakemake.input, strict=True))
    write_table(validation_table(paths), snakemake.output[0])


run_script(main, snakemake)  # noqa: F821
