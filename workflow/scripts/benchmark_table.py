"""Gather the benchmark files of every job into results/benchmarks.tsv (a report table)."""

from pathlib import Path

from nucseg.io.tables import write_table
from nucseg.provenance import collect_benchmarks
from nucseg.scripting import run_script


def main(snakemake):
    table = Path(snakemake.output[0])  # results/benchmarks.tsv gathers results/benchmarks/
    write_table(collect_benchmarks(table.with_suffix("")), table)


run_script(main, snakemake)  # noqa: F821
