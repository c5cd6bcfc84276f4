"""Tune the post-processing thresholds of one model or ensemble on its validation fold."""

from nucseg.datasets import read_manifest
from nucseg.postprocess import PostprocessConfig
from nucseg.predict import PredictConfig
from nucseg.scripting import run_script
from nucseg.tuning import tune_thresholds


def main(snakemake):
    tune_thresholds(
        list(snakemake.input.models),
        snakemake.params.weights,
        snakemake.input.fold,
        snakemake.output[0],
        base=PostprocessConfig.from_config(snakemake.params.postprocess),
        grid=snakemake.params.postprocess.get("grid"),
        categories=dict(read_manifest(snakemake.input.manifest)[["id", "category"]].values),
        vote=snakemake.params.vote,
        predict=PredictConfig.from_config(snakemake.params.predict),
        threads=snakemake.threads,
    )


run_script(main, snakemake)  # noqa: F821
