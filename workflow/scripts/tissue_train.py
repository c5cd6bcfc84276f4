"""Train the tissue network (softmax U-Net) with the shared training loop."""

import pandas as pd

from nucseg.augment import AugmentConfig
from nucseg.io.arrays import load_arrays
from nucseg.losses import LossConfig
from nucseg.models import ModelConfig
from nucseg.scripting import run_script
from nucseg.tissue import miou_validation, train_data
from nucseg.train import TrainConfig, TrainPaths, train_model


def main(snakemake):
    spec, out = snakemake.params.spec, snakemake.output
    split = pd.read_csv(snakemake.input.split, sep="\t")
    train_model(
        train_data(
            load_arrays(snakemake.input.arrays),
            split,
            spec["valid_fraction"],
            spec["split_seed"],
        ),
        ModelConfig(**spec["net"]),
        TrainConfig(**spec["train_settings"]),
        TrainPaths.of_rule(out, snakemake.params.checkpoints),
        loss=LossConfig(**spec.get("loss", {})),
        augment=AugmentConfig(**spec.get("augment", {})),
        validation=miou_validation(),
        threads=snakemake.threads,
    )


run_script(main, snakemake)  # noqa: F821
