"""Write the shipped-model folder of one trained model."""

import shlex
from pathlib import Path

from nucseg.export import Provenance, export_model
from nucseg.provenance import code_version, committed_in, file_sha256
from nucseg.scripting import run_script


def init_description(init: str) -> str:
    """The checkpoint training started from, with its sha256 (it may leave the checkout)."""
    if not init:
        return ""
    commit = committed_in(init)
    restore = f"; restore it with `git checkout {commit} -- {init}`" if commit else ""
    return f"`{init}` (sha256 {file_sha256(init)}{restore})"


def main(snakemake):
    out = snakemake.output[0]
    extra = [
        Path(f).resolve().relative_to(Path.cwd())
        for f in snakemake.params.config_files
        if Path(f).resolve() != Path("config.yaml").resolve()  # the workflow's own
    ]
    configs = " ".join(f"--configfile {shlex.quote(str(f))}" for f in extra)
    command = f".venv/bin/snakemake --cores 2 {out} {configs}".strip()
    export_model(
        Path(snakemake.input.model).parent,
        snakemake.input.thresholds,
        snakemake.input.manifest,
        snakemake.input.fold,
        out,
        name=snakemake.wildcards.model,
        provenance=Provenance(
            command=f"{command}\ncp -r {out} resources/models/\n"
            f"rm resources/models/{snakemake.wildcards.model}/.snakemake_timestamp",
            commit=code_version(Path.cwd()),
            config_files=", ".join(["config.yaml", *map(str, extra)]),
            data_licences=snakemake.params.licences,
            init=init_description(snakemake.params.init),
        ),
        predict=snakemake.params.predict,
        evaluation_path=snakemake.input.evaluation or None,
    )


run_script(main, snakemake)  # noqa: F821
