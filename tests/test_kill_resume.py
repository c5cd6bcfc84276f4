"""SIGKILL at any moment loses nothing: training resumes to the same weights, a killed
Snakemake run finishes with the same submission."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from workflow_run import snakemake, write_tiny_config

# A training run in its own process. With `die_in_save N` the N-th torch.save writes half of
# its bytes and then the process SIGKILLs itself: death in the middle of a checkpoint write.
DRIVER = """
import io, logging, os, signal, sys
import torch
from nucseg.models import ModelConfig
from nucseg.normalize import normalize_image
from nucseg.synth.nuclei import SynthConfig, generate
from nucseg.targets import compute_targets
from nucseg.train import TrainConfig, TrainData, TrainPaths, target_indices, train_model

folder, die_in_save = sys.argv[1], int(sys.argv[2])
logging.basicConfig(level=logging.INFO)
if die_in_save:
    real_save, calls = torch.save, []

    def dying_save(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) < die_in_save:
            return real_save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        real_save(obj, buffer)
        with open(f, "wb") as out:
            out.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            out.flush()
            os.fsync(out.fileno())
        os.kill(os.getpid(), signal.SIGKILL)

    torch.save = dying_save
images = generate(SynthConfig(n_images=4, seed=3, shapes=((64, 64),), shape_weights=(1.0,)), "t")
pixels = [normalize_image(i.pixels)[0] for i in images]
targets = [compute_targets(i.instance_labels)[target_indices(("semantic",))] for i in images]
data = TrainData(pixels[:3], targets[:3], pixels[3:], targets[3:], [images[3].instance_labels])
config = TrainConfig(epochs=6, steps_per_epoch=4, batch_size=2, crop=48, seed=7, device="cpu")
train_model(data, ModelConfig(base_width=8, depth=2), config, TrainPaths.in_folder(folder))
print("TRAINED", flush=True)
"""


def start_training(folder: Path, die_in_save: int = 0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(folder), str(die_in_save)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "last.pt", weights_only=True)["state_dict"]


def run_and_kill_in_training(folder: Path, delay: float) -> tuple[bool, str]:
    """Start training, wait until it logs that it is about to train (after resuming, if it
    does), then SIGKILL it ``delay`` seconds later; return (killed, its log)."""
    run = start_training(folder)
    lines = []
    for line in run.stderr:  # blocks line by line: the kill waits for the training to start
        lines.append(line)
        if "parameters, device" in line:
            break
    time.sleep(delay)
    killed = run.poll() is None
    if killed:
        run.send_signal(signal.SIGKILL)
    run.wait(timeout=600)
    return killed, "".join(lines) + run.stderr.read()


def test_training_killed_at_random_moments_and_mid_checkpoint_resumes_to_the_same_weights(
    tmp_path,
):
    reference = start_training(tmp_path / "reference")
    assert reference.wait(timeout=600) == 0, reference.stderr.read()
    log = reference.stderr.read()
    epoch_seconds = np.mean([float(m) for m in re.findall(r"seconds=([0-9.]+)", log)])

    folder = tmp_path / "killed"
    # death while writing the state after epoch 2 (the saves per epoch: best.pt if it
    # improved, then the state; the 3rd save is at least in epoch 2)
    mid_write = start_training(folder, die_in_save=3)
    assert mid_write.wait(timeout=600) == -signal.SIGKILL
    assert list(folder.rglob(".*.tmp*.pt")), "the kill did not land in a checkpoint write"
    state = torch.load(folder / "checkpoints/last.pt", weights_only=True)  # still whole
    assert state["epoch"] == 1

    # three kills at seeded random moments within the next 0.2-1.8 epochs of training
    rng = np.random.default_rng(11)
    runs = [run_and_kill_in_training(folder, d) for d in rng.uniform(0.2, 1.8, 3) * epoch_seconds]
    final = start_training(folder)
    assert final.wait(timeout=600) == 0, final.stderr.read()[-3000:]
    logs = [log for _, log in runs] + [final.stderr.read()]
    assert sum(killed for killed, _ in runs) >= 2
    resumed = [line for log in logs for line in log.splitlines() if "resuming" in line]
    assert resumed[0].endswith("after epoch 1"), logs  # the intact state, not the torn one
    assert len(resumed) == 4  # every restart continued from a saved state
    assert "unreadable" not in "".join(logs)  # no half-written file was ever loaded
    resumed = weights(folder)
    for name, value in weights(tmp_path / "reference").items():
        assert torch.equal(value, resumed[name]), name


@pytest.fixture
def killed_workflow(tmp_path):
    write_tiny_config(tmp_path)
    command = [sys.executable, "-m", "snakemake", "--cores", "2"]
    run = subprocess.Popen(
        [*command, "-s", str(Path(__file__).parents[1] / "Snakefile")],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes its jobs too
    )
    log = tmp_path / "results/logs/train_model"
    deadline = time.monotonic() + 600
    while not (log.is_dir() and any(log.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # inside a training job
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    return tmp_path


def test_killed_snakemake_run_reruns_to_the_same_submission(killed_workflow, tiny_run):
    assert not (killed_workflow / "results/submission.csv").exists()
    result = snakemake(killed_workflow)
    if "cannot be locked" in result.stderr:  # a SIGKILL leaves Snakemake's lock behind
        assert snakemake(killed_workflow, "--unlock").returncode == 0
        result = snakemake(killed_workflow)
    assert result.returncode == 0, result.stderr[-3000:]
    for output in ["results/submission.csv", "results/scores.tsv"]:
        assert (killed_workflow / output).read_bytes() == (tiny_run / output).read_bytes()
