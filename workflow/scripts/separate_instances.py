"""Turn one shard of probability maps into instance labels."""

from nucseg.io.arrays import load_arrays, save_arrays
from nucseg.postprocess import PostprocessConfig, instances_from_probability
from nucseg.scripting import run_script


def main(snakemake):
    config = PostprocessConfig(**snakemake.params.postprocess)
    probabilities = load_arrays(snakemake.input[0])
    instances = {
        # K x H x W head probabilities (semantic[, contour[, marker]])
        k: instances_from_probability(v.astype("float32"), config)
        for k, v in probabilities.items()
    }
    save_arrays(snakemake.output[0], instances)


run_script(main, snakemake)  # noqa: F821
