"""Assemble one dataset version from its sources."""

from pathlib import Path

from nucseg.datasets import SourceSpec, assemble_dataset
from nucseg.scripting import run_script


def main(snakemake):
    sources = [
        SourceSpec(
            name,
            spec["format"],
            Path(spec["path"]),
            spec.get("overlap", "larger"),
            Path(spec["labels_csv"]) if spec.get("labels_csv") else None,
            (spec["crop"]["width"], spec["crop"]["step"]) if spec.get("crop") else None,
        )
        for name, spec in snakemake.params.sources.items()
    ]
    assemble_dataset(sources, Path(snakemake.output.manifest).parent, **snakemake.params.selection)


run_script(main, snakemake)  # noqa: F821
