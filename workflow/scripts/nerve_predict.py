"""Segment the nerve test images and write the img,pixels submission."""

import torch

from nucseg.nerve import predict_folder, read_decision, write_nerve_submission
from nucseg.scripting import run_script


def main(snakemake):
    spec = snakemake.params.spec
    torch.set_num_threads(snakemake.threads)
    masks = predict_folder(
        snakemake.input.model,
        snakemake.input.test,
        tuple(spec["input_size"]),
        read_decision(snakemake.input.decision),
        hflip=spec["hflip_tta"],
        device=spec["train_settings"]["device"],
    )
    write_nerve_submission(masks, snakemake.output[0])


run_script(main, snakemake)  # noqa: F821
