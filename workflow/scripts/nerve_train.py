"""Train the nerve network (U-Net + presence head) with the shared training loop."""

import pandas as pd

from nucseg.augment import AugmentConfig
from nucseg.io.arrays import load_arrays
from nucseg.losses import LossConfig
from nucseg.models import ModelConfig
from nucseg.nerve import (
    NerveDecision,
    dice_validation,
    train_data,
    tune_on_validation,
    write_decision,
)
from nucseg.scripting import run_script
from nucseg.train import TrainConfig, TrainPaths, train_model


def main(snakemake):
    spec, out = snakemake.params.spec, snakemake.output
    arrays = load_arrays(snakemake.input.arrays)
    split = pd.read_csv(snakemake.input.split, sep="\t")
    default = NerveDecision(**spec["decision"])
    train_model(
        train_data(arrays, split),
        ModelConfig(**spec["net"]),
        TrainConfig(**spec["train_settings"]),
        TrainPaths.of_rule(out, snakemake.params.checkpoints),
        loss=LossConfig(**spec.get("loss", {})),
        augment=AugmentConfig(**spec.get("augment", {})),
        validation=dice_validation(default),
        threads=snakemake.threads,
    )
    # the presence and area gates and the pixel threshold, chosen on the validation images
    decision, scores = tune_on_validation(
        out.model,
        arrays,
        split,
        default,
        hflip=spec["hflip_tta"],
        device=spec["train_settings"]["device"],
    )
    write_decision(decision, scores, out.decision)


run_script(main, snakemake)  # noqa: F821
