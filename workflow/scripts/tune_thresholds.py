"""Tune the post-processing thresholds of one model or ensemble on its validation fold
(or take over the thresholds of the one model an ensemble holds, or those its config fixes)."""

import shutil

from nucseg.datasets import read_manifest
from nucseg.io.atomic import atomic_path
from nucseg.postprocess import PostprocessConfig
from nucseg.scripting import run_script
from nucseg.tuning import tune_thresholds, write_fixed_thresholds


def main(snakemake):
    base = PostprocessConfig.from_config(snakemake.params.postprocess)
    if snakemake.params.fixed:
        write_fixed_thresholds(snakemake.params.fixed, base, snakemake.output[0])
        return
    if "reuse" in snakemake.input.keys():
        with atomic_path(snakemake.output[0]) as tmp:
            shutil.copyfile(snakemake.input.reuse, tmp)
        return
    manifest = read_manifest(snakemake.input.manifest)
    tune_thresholds(
        list(snakemake.input.maps),
        snakemake.params.weights,
        snakemake.input.fold,
        snakemake.output[0],
        base=base,
        grid=snakemake.params.postprocess.get("grid"),
        categories=dict(manifest[["id", "category"]].values),
        acquisitions=dict(manifest[["id", "acquisition"]].values),
        vote=snakemake.params.vote,
        threads=snakemake.threads,
    )


run_script(main, snakemake)  # noqa: F821
