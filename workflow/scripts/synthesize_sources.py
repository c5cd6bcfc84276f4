"""Write the synthetic demo sources (Kaggle stage1 layout) under resources/."""

from pathlib import Path

from nucseg.scripting import run_script
from nucseg.synth import write_demo_sources


def main(snakemake):
    spec = snakemake.params.synthetic
    root = Path(snakemake.output.train).parent
    extra = {"shapes": spec["shapes"]} if spec.get("shapes") else {}
    write_demo_sources(
        root, n_train=spec["n_train"], n_test=spec["n_test"], seed=spec["seed"], **extra
    )


run_script(main, snakemake)  # noqa: F821
