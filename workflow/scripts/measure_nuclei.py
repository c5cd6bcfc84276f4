"""Measure every nucleus one model or ensemble found in the test images."""

from nucseg.io.arrays import load_arrays
from nucseg.io.kaggle import list_stage1
from nucseg.io.tables import write_table
from nucseg.measure import measure_instances
from nucseg.scripting import run_script


def main(snakemake):
    instances = {}
    for path in snakemake.input.instances:
        instances.update(load_arrays(path))
    originals = {
        entry.image_id: entry.image_path
        for folder in snakemake.input.images
        for entry in list_stage1(folder, require_masks=False)
    }
    table, summary = measure_instances(instances, originals)
    write_table(table, snakemake.output.measurements, sep=",")
    write_table(summary, snakemake.output.summary, sep=",")


run_script(main, snakemake)  # noqa: F821
