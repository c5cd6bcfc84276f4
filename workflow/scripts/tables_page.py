"""The validation, dataset and benchmark pages of the report."""

import json
from pathlib import Path

import pandas as pd

from nucseg.report_pages import table_page
from nucseg.scripting import run_script


def read(path):
    return pd.read_csv(path, sep="\t")


def main(snakemake):
    out = snakemake.output
    manifest = json.loads(Path(snakemake.input.run_manifest).read_text())
    rows = [("config sha256", manifest["config_sha256"]), ("code", manifest["code_version"])]
    for group in ("packages", "datasets", "pretrained"):
        rows += [(f"{group}: {k}", v) for k, v in manifest.get(group, {}).items()]
    table_page(
        pd.DataFrame(rows, columns=["what", "value"]),
        out.provenance,
        "Provenance",
        "The configuration, code, packages and data this run used.",
    )
    validation = (
        read(snakemake.input.validation)
        if snakemake.input.validation
        else pd.DataFrame({"note": ["postprocess.tune is off: nothing was validated"]})
    )
    table_page(
        validation,
        out.validation,
        "Validation scores (tuned thresholds)",
        "Mean DSB score per category on each model's held-out fold; 'balanced' is the mean "
        "over categories that tuning maximised.",
    )
    stats = pd.concat(
        [
            read(path).assign(version=version)
            for version, path in zip(snakemake.params.versions, snakemake.input.stats, strict=True)
        ],
        ignore_index=True,
    )
    table_page(
        stats[["version", *[c for c in stats.columns if c != "version"]]],
        out.datasets,
        "Dataset statistics",
        "Per dataset version and category: images, normalisation, and gray-level mean, "
        "standard deviation and 1st/99th percentiles before and after normalisation.",
    )
    table_page(
        read(snakemake.input.benchmarks),
        out.benchmarks,
        "Job benchmarks",
        "Wall time (s), memory (MB) and I/O of every job of the run (Snakemake benchmark files).",
    )


run_script(main, snakemake)  # noqa: F821
