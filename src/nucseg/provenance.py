"""What produced a run: ``results/run_manifest.json``."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

from nucseg.io.atomic import atomic_path

PACKAGES = ("nucseg", "torch", "numpy", "scipy", "scikit-image", "pandas", "snakemake", "tifffile")


def file_sha256(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def code_version(folder: Path | str) -> str:
    """``git describe --always --dirty`` of the folder, or ``unknown`` outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip()


def write_run_manifest(
    config: dict, dataset_manifests: dict[str, str], code_folder: Path | str, out_path: Path | str
) -> dict:
    """Write the config's sha256 (of its canonical JSON), the code version, the versions of
    the main packages and the sha256 of every dataset version's manifest."""
    canonical = json.dumps(config, sort_keys=True, default=str).encode()
    record = {
        "config_sha256": hashlib.sha256(canonical).hexdigest(),
        "code_version": code_version(code_folder),
        "packages": {name: _version(name) for name in PACKAGES},
        "datasets": {name: file_sha256(path) for name, path in sorted(dataset_manifests.items())},
    }
    with atomic_path(out_path) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    return record


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
