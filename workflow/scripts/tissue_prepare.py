"""Read and check the tissue tiles and annotations; write arrays and the split."""

from nucseg.io.arrays import save_arrays
from nucseg.io.tables import write_table
from nucseg.scripting import run_script
from nucseg.tissue import prepare


def main(snakemake):
    arrays, split = prepare(
        snakemake.input.images,
        snakemake.input.masks,
        snakemake.params.test_fraction,
        snakemake.params.seed,
    )
    save_arrays(snakemake.output.arrays, arrays)
    write_table(split, snakemake.output.split)


run_script(main, snakemake)  # noqa: F821
