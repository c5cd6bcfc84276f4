"""What produced a run and what it cost: ``results/run_manifest.json``,
``results/benchmarks.tsv``."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd

from nucseg.errors import NucsegInputError
from nucseg.io.atomic import atomic_path

PACKAGES = ("nucseg", "torch", "numpy", "scipy", "scikit-image", "pandas", "snakemake", "tifffile")


def file_sha256(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _git(folder: Path | str, *args: str) -> str:
    """The output of ``git args`` in ``folder``; empty outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip()


def code_version(folder: Path | str) -> str:
    """``git describe --always --dirty`` of the folder, or ``unknown`` outside a git checkout."""
    return _git(folder, "describe", "--always", "--dirty") or "unknown"


def committed_in(path: Path | str) -> str:
    """The short hash of the last commit that added or changed ``path`` (a file can be
    restored from it with ``git checkout <hash> -- path``, also after a later commit removed
    it); empty when git never tracked it."""
    path = Path(path)
    return _git(path.parent, "log", "-1", "--format=%h", "--diff-filter=AM", "--", path.name)


def write_run_manifest(
    config: dict,
    dataset_manifests: dict[str, str],
    code_folder: Path | str,
    out_path: Path | str,
    pretrained: dict[str, str] | None = None,
) -> dict:
    """Write the config's sha256 (of its canonical JSON), the code version, the versions of
    the main packages, the sha256 of every dataset version's manifest and of every
    pretrained model's checkpoint."""
    canonical = json.dumps(config, sort_keys=True, default=str).encode()
    record = {
        "config_sha256": hashlib.sha256(canonical).hexdigest(),
        "code_version": code_version(code_folder),
        "packages": {name: _version(name) for name in PACKAGES},
        "datasets": {name: file_sha256(path) for name, path in sorted(dataset_manifests.items())},
        "pretrained": {
            name: file_sha256(path) for name, path in sorted((pretrained or {}).items())
        },
    }
    with atomic_path(out_path) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    return record


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def collect_benchmarks(folder: Path | str) -> pd.DataFrame:
    """One row per job from Snakemake's ``benchmark:`` files under ``folder``
    (``<rule>.tsv`` or ``<rule>/<job>.tsv``): rule, job, then Snakemake's columns (seconds,
    max_rss in MB, io in MB, mean_load in %, cpu_time in s); sorted by rule and job."""
    folder = Path(folder)
    rows = []
    for path in sorted(folder.rglob("*.tsv")):
        rule, *job = path.relative_to(folder).with_suffix("").parts
        try:
            table = pd.read_csv(path, sep="\t")
        except (OSError, ValueError) as error:
            raise NucsegInputError(f"{path}: not a benchmark table ({error})") from None
        if "s" not in table.columns or table.empty:
            raise NucsegInputError(f"{path}: not a benchmark table (no 's' column or no row)")
        rows.append({"rule": rule, "job": "/".join(job), **table.iloc[-1].to_dict()})
    if not rows:
        return pd.DataFrame(columns=["rule", "job", "s"])
    return pd.DataFrame(rows).sort_values(["rule", "job"], ignore_index=True)
