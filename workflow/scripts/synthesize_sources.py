"""Write the synthetic demo sources (Kaggle, TCGA-like, CTC-like layouts) under resources/."""

from pathlib import Path

from nucseg.scripting import run_script
from nucseg.synth.nuclei import write_demo_sources


def main(snakemake):
    spec = snakemake.params.synthetic
    root = Path(snakemake.output.test).parent
    optional = ("shapes", "n_monuseg_tiles", "n_ctc_frames")
    write_demo_sources(
        root,
        n_train=spec["n_train"],
        n_test=spec["n_test"],
        seed=spec["seed"],
        **{key: spec[key] for key in optional if spec.get(key)},
    )


run_script(main, snakemake)  # noqa: F821
