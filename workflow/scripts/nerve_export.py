"""Write the trained nerve model as a shipped-model folder (config nerve.export)."""

from pathlib import Path

from nucseg.nerve import export_nerve_model
from nucseg.scripting import run_script


def main(snakemake):
    spec = snakemake.params.spec
    export = spec["export"]
    export_nerve_model(
        Path(snakemake.input.model).parent,
        snakemake.input.scores or None,
        snakemake.output[0],
        spec,
        name=export["name"],
        data=export["data"],
    )


run_script(main, snakemake)  # noqa: F821
