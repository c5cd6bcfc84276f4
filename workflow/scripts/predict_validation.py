"""Predict the validation images of a fold with one model checkpoint."""

from nucseg.normalize import NormalizeConfig
from nucseg.predict import PredictConfig
from nucseg.prediction_jobs import predict_validation
from nucseg.scripting import run_script


def main(snakemake):
    predict_validation(
        snakemake.input.model,
        snakemake.input.fold,
        snakemake.input.manifest,
        snakemake.output[0],
        prepared_with=NormalizeConfig(**snakemake.params.normalize),
        config=PredictConfig.from_config(snakemake.params.predict),
        threads=snakemake.threads,
    )


run_script(main, snakemake)  # noqa: F821
