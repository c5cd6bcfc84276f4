"""Predict one shard of the test images with one model."""

from nucseg.normalize import NormalizeConfig
from nucseg.predict import PredictConfig
from nucseg.prediction_jobs import predict_shard
from nucseg.scripting import run_script


def main(snakemake):
    predict_shard(
        snakemake.input.model,
        snakemake.input.manifest,
        snakemake.input.normalized,
        snakemake.output[0],
        shard=snakemake.params.shard,
        n_shards=snakemake.params.n_shards,
        test_roots=snakemake.input.images,
        prepared_with=NormalizeConfig(**snakemake.params.normalize),
        config=PredictConfig.from_config(snakemake.params.predict),
        threads=snakemake.threads,
    )


run_script(main, snakemake)  # noqa: F821
