"""Compute the training targets of one dataset version."""

import logging
from pathlib import Path

from nucseg.datasets import write_targets
from nucseg.scripting import run_script
from nucseg.targets import TargetConfig


def main(snakemake):
    count = write_targets(
        Path(snakemake.input.manifest).parent,
        snakemake.output[0],
        TargetConfig(**snakemake.params.targets),
    )
    logging.getLogger("nucseg").info("targets of %d images", count)


run_script(main, snakemake)  # noqa: F821
