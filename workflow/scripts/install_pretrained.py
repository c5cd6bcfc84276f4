"""Install a shipped model folder's checkpoint for the workflow."""

from pathlib import Path

from nucseg.export import install_pretrained
from nucseg.scripting import run_script


def main(snakemake):
    install_pretrained(Path(snakemake.input.model).parent, snakemake.output[0])


run_script(main, snakemake)  # noqa: F821
