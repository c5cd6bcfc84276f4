"""Turn one shard of probability maps into instance labels (tuned thresholds when given)."""

from nucseg.io.arrays import load_arrays, save_arrays
from nucseg.postprocess import PostprocessConfig, instances_from_probability, read_thresholds
from nucseg.scripting import run_script


def main(snakemake):
    if snakemake.input.get("thresholds"):
        config = read_thresholds(snakemake.input.thresholds)
    else:
        config = PostprocessConfig.from_config(snakemake.params.postprocess)
    probabilities = load_arrays(snakemake.input.probabilities)
    instances = {
        # K x H x W head probabilities (semantic[, contour[, marker]])
        k: instances_from_probability(v.astype("float32"), config)
        for k, v in probabilities.items()
    }
    save_arrays(snakemake.output[0], instances)


run_script(main, snakemake)  # noqa: F821
