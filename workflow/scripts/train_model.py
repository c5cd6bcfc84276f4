"""Train one model on its fold of its dataset version."""

from nucseg.models import ModelConfig
from nucseg.postprocess import PostprocessConfig
from nucseg.scripting import run_script
from nucseg.train import TrainConfig, load_train_data, train_model


def main(snakemake):
    spec = snakemake.params.model
    train_model(
        load_train_data(snakemake.input.manifest, snakemake.input.fold),
        ModelConfig(**spec.get("net", {})),
        TrainConfig(**spec.get("train", {})),
        snakemake.output.model,
        snakemake.output.log_table,
        threads=snakemake.threads,
        postprocess=PostprocessConfig(**snakemake.params.postprocess),
    )


run_script(main, snakemake)  # noqa: F821
