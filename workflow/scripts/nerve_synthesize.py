"""Write generated ultrasound in the Kaggle ultrasound-nerve-segmentation layout."""

from pathlib import Path

from nucseg.nerve import NerveSynthConfig, write_nerve_dataset
from nucseg.scripting import run_script


def main(snakemake):
    root = Path(snakemake.output.train).parent
    write_nerve_dataset(root, NerveSynthConfig(**snakemake.params.spec))


run_script(main, snakemake)  # noqa: F821
