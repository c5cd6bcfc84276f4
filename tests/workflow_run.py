"""Run the real Snakemake workflow on a tiny config (shared by the workflow and SLURM tests)."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def tiny_config() -> dict:
    """The demo config shrunk to seconds on generated data: 2 tiny models (1 and 3 heads; gray
    and colour input) and their ensemble."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["synthetic"].update(
        n_train=6, n_test=3, shapes=[[64, 96], [151, 120]], n_monuseg_tiles=1, n_ctc_frames=4
    )
    # generated Kaggle images only: the temporary folder has no shipped slice or model
    config["sources"]["dsb_stage1_train"]["path"] = "resources/synthetic/stage1_train"
    config["test_images"] = "resources/synthetic/stage1_test"
    config["solution"] = "resources/synthetic/stage1_solution.csv"
    model = config["models"]["unet16"]
    model["net"].update(base_width=4, depth=2)
    model["train"].update(epochs=2, steps_per_epoch=2, batch_size=2, crop=48)
    # a second, three-head model with colour input (its own dataset version): the ensemble
    # mixes head counts and normalisations (test and validation images normalised per model)
    config["datasets"]["v2_colour"] = config["datasets"]["v2"] | {
        "normalize": {"method": "auto+rgb"}
    }
    colour = {"channel_shuffle": False, "channel_gain": 0.1}
    config["models"] = {
        "unet16": model,
        "camunet4": copy.deepcopy(model)
        | {
            "net": model["net"] | {"arch": "camunet"},
            "dataset": "v2_colour",
            "augment": model["augment"] | colour,
        },
    }
    config["ensembles"] = {"final": {"models": ["unet16", "camunet4"], "weights": [1.0, 1.0]}}
    config["submission"] = "final"  # the ensemble's submission, overlays and measurements
    config["predict"].update(tta_views=[0, 5], keep_maps=True)
    config["evaluation"] = {  # the generated test images as a 16-bit camera records them
        "generated_16bit": {
            "format": "kaggle_stage1",
            "path": "resources/synthetic/stage1_test",
            "labels_csv": "resources/synthetic/stage1_solution.csv",
            "camera": True,
        }
    }
    config["postprocess"]["grid"] = {"mask_threshold": [0.4, 0.5], "marker_threshold": [0.5, 0.7]}
    tiny_net = {"base_width": 4, "depth": 2}
    nerve = config["nerve"]
    nerve["synthetic"].update(subjects=3, images_per_subject=4, n_test=4)
    nerve.update(input_size=[48, 64], valid_fraction=0.25)
    nerve["net"].update(tiny_net)
    nerve["train_settings"].update(epochs=2, steps_per_epoch=2, batch_size=4, crop=48)
    tissue = config["tissue"]
    tissue["synthetic"].update(n_images=8, size=64)
    tissue["net"].update(tiny_net)
    tissue["train_settings"].update(epochs=2, steps_per_epoch=2, batch_size=2, crop=32)
    return config


def write_tiny_config(workdir: Path) -> Path:
    path = Path(workdir) / "config.yaml"
    path.write_text(yaml.safe_dump(tiny_config()))
    return path


def snakemake(
    workdir: Path, *args: str, env: dict | None = None, cores: int | None = 2, timeout: int = 900
) -> subprocess.CompletedProcess:
    """``snakemake`` on the repository's Snakefile in ``workdir`` (its config.yaml)."""
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
    command += ["--directory", str(workdir)]
    if cores is not None:
        command += ["--cores", str(cores)]
    return subprocess.run(
        [*command, *args], cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env
    )
