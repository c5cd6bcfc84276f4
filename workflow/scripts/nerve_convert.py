"""Write a real ultrasound set (config nerve.source) in the Kaggle 2016 layout."""

from pathlib import Path

from nucseg.io.ultrasound import write_nerve_layout
from nucseg.scripting import run_script


def main(snakemake):
    out = Path(snakemake.output.train).parent
    count = write_nerve_layout(snakemake.params.format, snakemake.input[0], out)
    print(f"{count} training pairs -> {out}")


run_script(main, snakemake)  # noqa: F821
