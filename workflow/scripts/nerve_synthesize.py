"""Write generated ultrasound in the Kaggle ultrasound-nerve-segmentation layout."""

from pathlib import Path

from nucseg.scripting import run_script
from nucseg.synth.ultrasound import NerveSynthConfig, write_nerve_dataset


def main(snakemake):
    root = Path(snakemake.output.train).parent
    write_nerve_dataset(root, NerveSynthConfig(**snakemake.params.spec))


run_script(main, snakemake)  # noqa: F821
