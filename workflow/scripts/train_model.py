"""Train one model on its dataset version."""

from nucseg.models import ModelConfig
from nucseg.postprocess import PostprocessConfig
from nucseg.scripting import run_script
from nucseg.train import TrainConfig, load_train_data, train_model


def main(snakemake):
    spec, split = snakemake.params.model, snakemake.params.split
    data = load_train_data(
        snakemake.input.manifest,
        snakemake.input.normalized,
        snakemake.input.labels,
        valid_fraction=split.get("valid_fraction", 0.15),
        seed=split.get("split_seed", 0),
    )
    train_model(
        data,
        ModelConfig(**spec.get("net", {})),
        TrainConfig(**spec.get("train", {})),
        snakemake.output.model,
        snakemake.output.log_table,
        threads=snakemake.threads,
        postprocess=PostprocessConfig(**snakemake.params.postprocess),
    )


run_script(main, snakemake)  # noqa: F821
