"""Mean Dice of nerve model folders on a test folder, beside "no nerve everywhere".

A model folder is what rule ``nerve_export`` writes (``model.pt``, ``decision.json``,
``nerve.json``); the test folder is in the Kaggle 2016 layout (``<n>.tif``) with its masks
as an ``img,pixels`` CSV (each image in its own size).

    .venv/bin/python benchmarks/bench_nerve.py --model resources/models/nerve_usgra \\
        --model results/nerve/export --test results/nerve/usgra/test \\
        --solution results/nerve/usgra/test_solution.csv
    .venv/bin/python benchmarks/bench_nerve.py --quick    # seconds: generated data (CI)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nucseg.checkpoints import save_checkpoint
from nucseg.models import ModelConfig, build_model
from nucseg.nerve import (
    NerveDecision,
    export_nerve_model,
    load_nerve_folder,
    read_nerve_submission,
    score_nerve,
    shapes_of_test_images,
    write_decision,
)
from nucseg.synth.ultrasound import NerveSynthConfig, write_nerve_dataset


def measure(models: list[Path], test: Path, solution: Path) -> None:
    truth = read_nerve_submission(solution, shapes_of_test_images(test))
    empty = {n: np.zeros_like(mask) for n, mask in truth.items()}
    rows = [("no nerve everywhere", score_nerve(truth, empty), 0.0)]
    for folder in models:
        started = time.perf_counter()
        predicted = load_nerve_folder(folder).predict_folder(test)
        rows.append((str(folder), score_nerve(truth, predicted), time.perf_counter() - started))
    share = np.mean([t.any() for t in truth.values()])
    print(f"{len(truth)} test images, {share:.0%} with a nerve")
    print("| model | mean Dice | images called nerve | seconds |")
    print("| --- | --- | --- | --- |")
    for name, table, seconds in rows:
        mean = table[table.img == "mean"].iloc[0]
        print(f"| {name} | {mean.dice:.3f} | {mean.predicted_nerve:.0%} | {seconds:.1f} |")


def quick_case(root: Path) -> tuple[Path, Path, Path]:
    """Generated test images and an untrained tiny model folder."""
    write_nerve_dataset(
        root / "data", NerveSynthConfig(subjects=1, images_per_subject=1, n_test=4, seed=3)
    )
    torch.manual_seed(0)
    net = ModelConfig(base_width=4, depth=2, block_order="conv-bn-act", presence_head=True)
    (root / "m").mkdir()
    save_checkpoint(build_model(net), root / "m/model.pt")
    write_decision(NerveDecision(), {}, root / "m/decision.json")
    (root / "m/train_log.tsv").write_text("epoch\n")
    spec = {"input_size": [48, 64]}
    export_nerve_model(root / "m", None, root / "nerve_quick", spec, name="nerve_quick", data="-")
    return root / "nerve_quick", root / "data/test", root / "data/test_solution.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, action="append", default=[])
    parser.add_argument("--test", type=Path)
    parser.add_argument("--solution", type=Path)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            model, test, solution = quick_case(Path(tmp))
            measure([model], test, solution)
        return
    if not (args.model and args.test and args.solution):
        parser.error("--model, --test and --solution are needed (or --quick)")
    measure(args.model, args.test, args.solution)


if __name__ == "__main__":
    main()
