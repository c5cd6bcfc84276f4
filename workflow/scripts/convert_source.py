"""Read, check and (optionally) crop one raw source."""

from pathlib import Path

from nucseg.datasets import SourceSpec, convert_source
from nucseg.scripting import run_script


def main(snakemake):
    spec = snakemake.params.spec
    source = SourceSpec(
        snakemake.params.name,
        spec["format"],
        Path(spec["path"]),
        spec.get("overlap", "larger"),
        Path(spec["labels_csv"]) if spec.get("labels_csv") else None,
        (spec["crop"]["width"], spec["crop"]["step"]) if spec.get("crop") else None,
    )
    convert_source(source, Path(snakemake.output.manifest).parent)


run_script(main, snakemake)  # noqa: F821
