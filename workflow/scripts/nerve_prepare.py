"""Read, check and shrink the nerve training pairs; write the presence-stratified split."""

from nucseg.io.arrays import save_arrays
from nucseg.io.tables import write_table
from nucseg.nerve import prepare_train
from nucseg.scripting import run_script


def main(snakemake):
    params = snakemake.params
    arrays, split = prepare_train(
        snakemake.input[0], tuple(params.size), params.valid_fraction, params.seed
    )
    save_arrays(snakemake.output.arrays, arrays)
    write_table(split, snakemake.output.split)


run_script(main, snakemake)  # noqa: F821
