"""Average (or vote on) the ensemble members' probability maps for one shard."""

import numpy as np

from nucseg.ensemble import weighted_mean
from nucseg.io.arrays import load_arrays, save_arrays
from nucseg.scripting import run_script


def main(snakemake):
    members = [load_arrays(path) for path in snakemake.input]
    mean = weighted_mean(members, snakemake.params.weights, snakemake.params.vote)
    save_arrays(snakemake.output[0], {k: v.astype(np.float16) for k, v in mean.items()})


run_script(main, snakemake)  # noqa: F821
