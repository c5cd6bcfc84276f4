"""Train one model on its fold of its dataset version (resuming an interrupted run)."""

from nucseg.augment import AugmentConfig
from nucseg.losses import LossConfig
from nucseg.models import ModelConfig
from nucseg.normalize import NormalizeConfig
from nucseg.postprocess import PostprocessConfig
from nucseg.scripting import run_script
from nucseg.train import TrainConfig, TrainPaths, load_train_data, train_model


def main(snakemake):
    spec = snakemake.params.model
    net = ModelConfig(**spec.get("net", {}))
    out = snakemake.output
    train_model(
        load_train_data(snakemake.input.manifest, snakemake.input.fold, net.heads),
        net,
        TrainConfig(**spec.get("train", {})),
        TrainPaths.of_rule(out, snakemake.params.checkpoints),
        loss=LossConfig(**spec.get("loss", {})),
        augment=AugmentConfig(**spec.get("augment", {})),
        postprocess=PostprocessConfig.from_config(snakemake.params.postprocess),
        normalize=NormalizeConfig(**snakemake.params.normalize),
        threads=snakemake.threads,
        init=snakemake.input.init or None,
    )


run_script(main, snakemake)  # noqa: F821
