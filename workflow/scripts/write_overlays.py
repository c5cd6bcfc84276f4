"""Outline overlays of a few test images per category for one ensemble."""

from nucseg.datasets import load_normalized, read_manifest
from nucseg.io.arrays import load_arrays
from nucseg.io.kaggle import read_solutions
from nucseg.plots import write_overlays
from nucseg.scripting import run_script


def main(snakemake):
    instances = {}
    for path in snakemake.input.instances:
        instances.update(load_arrays(path))
    manifest = read_manifest(snakemake.input.manifest)
    categories = dict(manifest[["id", "category"]].values)
    truth = read_solutions(snakemake.input.solution) if snakemake.input.solution else None
    chosen = write_overlays(
        instances,
        load_normalized(snakemake.input.normalized, manifest["id"].tolist()),
        truth,
        categories,
        snakemake.output[0],
        per_category=snakemake.params.per_category,
    )
    print(f"nucseg: {len(chosen)} overlays")


run_script(main, snakemake)  # noqa: F821
