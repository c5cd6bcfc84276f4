"""Write generated tissue tiles (RGBA) and palette-mode annotations."""

from pathlib import Path

from nucseg.scripting import run_script
from nucseg.synth.tissue import TissueSynthConfig, write_tissue_dataset


def main(snakemake):
    write_tissue_dataset(
        Path(snakemake.output.images).parent, TissueSynthConfig(**snakemake.params.spec)
    )


run_script(main, snakemake)  # noqa: F821
