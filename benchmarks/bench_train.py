"""Training benchmarks.

``throughput``: images/s of training steps (batch 8, 256x256 crops, augmentation included)
for a network, and the share of each step spent preparing data (crop + augmentation).
``compare``: unet vs caunet vs camunet trained on the same fold for the same wall-time
budget; prints the best validation DSB score of each (needs a built fold, e.g.
``snakemake --cores 2 results/datasets/v2/folds/0``).

    .venv/bin/python benchmarks/bench_train.py throughput [--precision fp32]
    .venv/bin/python benchmarks/bench_train.py throughput --quick    # seconds (CI)
    .venv/bin/python benchmarks/bench_train.py throughput --compile --width 32   # eager vs compiled
    .venv/bin/python benchmarks/bench_train.py compare --budget 300
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nucseg.augment import AugmentConfig, augment_batch, sample_crops
from nucseg.losses import LossConfig, segmentation_loss
from nucseg.models import ModelConfig, build_model, count_parameters
from nucseg.precision import autocast, autocast_dtype, channels_last, precision_name
from nucseg.synth.nuclei import SynthConfig, generate
from nucseg.targets import compute_targets
from nucseg.train import TrainConfig, TrainPaths, load_train_data, target_indices, train_model


def throughput(
    arch: str,
    steps: int,
    threads: int,
    precision: str,
    crop: int = 256,
    width: int = 16,
    compile: bool = False,
) -> float:
    """Training steps as nucseg.train runs them (autocast per ``precision``, channels-last,
    ``torch.compile`` when ``compile``); returns images per second."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = ModelConfig(arch=arch, base_width=width, depth=4 if width >= 8 else 2)
    images = generate(
        SynthConfig(n_images=8, seed=1, shapes=((360, 360),), shape_weights=(1.0,)), "b"
    )
    pixels = [(i.pixels[..., :3].max(2)[None] / 255).astype(np.float32) for i in images]
    targets = [compute_targets(i.instance_labels)[target_indices(net.heads)] for i in images]
    cpu = torch.device("cpu")
    dtype = autocast_dtype(precision, cpu)
    model = channels_last(build_model(net))
    optimizer = torch.optim.Adam(model.parameters())
    forward = torch.compile(model) if compile else model
    rng, generator = np.random.default_rng(0), torch.Generator().manual_seed(0)
    weights = np.full(len(pixels), 1 / len(pixels))
    data_seconds, start = 0.0, 0.0
    for step in range(steps + 2):  # two warm-up steps (the compilation)
        if step == 2:
            data_seconds, start = 0.0, time.perf_counter()
        tick = time.perf_counter()
        batch = sample_crops(rng, pixels, targets, weights, 8, crop)
        inputs, target = augment_batch(generator, *batch, AugmentConfig())
        inputs = channels_last(inputs)
        data_seconds += time.perf_counter() - tick
        optimizer.zero_grad()
        with autocast(cpu, dtype):
            output = forward(inputs).float32()
        loss, _ = segmentation_loss(output, target, net.heads, LossConfig())
        loss.backward()
        optimizer.step()
    total = time.perf_counter() - start
    print(
        f"{arch}-{width}{' compiled' if compile else ''}: {count_parameters(model) / 1e6:.2f} M "
        f"params, {precision_name(dtype)}: {8 * steps / total:.2f} img/s at {crop}x{crop} on "
        f"{threads} threads; data share {100 * data_seconds / total:.1f} %",
        flush=True,
    )
    return 8 * steps / total


def compare(fold: Path, manifest: Path, budget: float, threads: int) -> None:
    for arch in ("unet", "caunet", "camunet"):
        net = ModelConfig(arch=arch)
        data = load_train_data(manifest, fold, net.heads)
        config = TrainConfig(
            epochs=1000,
            steps_per_epoch=40,
            batch_size=8,
            crop=128,
            max_seconds=budget,
            device="cpu",
        )
        with tempfile.TemporaryDirectory() as folder:
            table = train_model(
                data,
                net,
                config,
                TrainPaths.in_folder(folder),
                loss=LossConfig(terms={"bce": 1, "iou": 1}),
                threads=threads,
            )
        best = table.valid_dsb.idxmax()
        print(
            f"{arch}: {len(table)} epochs in {table.seconds.sum():.0f} s, best validation DSB "
            f"{table.valid_dsb[best]:.4f} (epoch {table.epoch[best]}), last "
            f"{table.valid_dsb.iloc[-1]:.4f}",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["throughput", "compare"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--budget", type=float, default=300.0, help="seconds per model")
    parser.add_argument("--fold", type=Path, default=Path("results/datasets/v2/folds/0"))
    parser.add_argument("--manifest", type=Path, default=Path("results/datasets/v2/manifest.tsv"))
    parser.add_argument("--quick", action="store_true", help="throughput: 1 step, tiny (CI)")
    parser.add_argument("--width", type=int, default=16, help="throughput: base width")
    parser.add_argument("--arch", default="camunet", help="throughput --compile: the network")
    parser.add_argument(
        "--compile", action="store_true", help="throughput: eager vs torch.compile, one run"
    )
    args = parser.parse_args()
    if args.what == "throughput" and args.compile:
        shape = dict(crop=48, width=4) if args.quick else dict(width=args.width)
        steps = 1 if args.quick else args.steps
        eager = throughput(args.arch, steps, args.threads, args.precision, **shape)
        compiled = throughput(args.arch, steps, args.threads, args.precision, **shape, compile=True)
        print(f"torch.compile: x{compiled / eager:.2f} the images per second of eager steps")
    elif args.what == "throughput":
        for arch in ("unet", "caunet", "camunet"):
            if args.quick:
                throughput(arch, 1, args.threads, args.precision, crop=48, width=4)
            else:
                throughput(arch, args.steps, args.threads, args.precision, width=args.width)
    else:
        compare(args.fold, args.manifest, args.budget, args.threads)


if __name__ == "__main__":
    main()
