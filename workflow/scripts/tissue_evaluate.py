"""Predict the tissue test tiles; write class maps, per-class scores and overlays."""

from pathlib import Path

import pandas as pd
import torch

from nucseg.io.arrays import load_arrays
from nucseg.io.tables import write_table
from nucseg.scripting import run_script
from nucseg.tissue import evaluate


def main(snakemake):
    torch.set_num_threads(snakemake.threads)
    scores = evaluate(
        snakemake.input.model,
        load_arrays(snakemake.input.arrays),
        pd.read_csv(snakemake.input.split, sep="\t"),
        Path(snakemake.output.scores).parent,
        device=snakemake.params.device,
    )
    write_table(scores, snakemake.output.scores)


run_script(main, snakemake)  # noqa: F821
