"""Float32 vs bfloat16 autocast, with and without channels-last, on this CPU.

Inference (batch 8 at 256x256, no TTA) and training steps (forward + backward + Adam, batch 8
at 128x128 and 256x256) of a network, in images/s, all four variants measured in the same
run; the float32 + contiguous layout is the baseline (what nucseg ran before the precision
setting).  Skips bfloat16 on a CPU without native bfloat16.

    .venv/bin/python benchmarks/bench_precision.py
    .venv/bin/python benchmarks/bench_precision.py --arch camunet --width 24
    .venv/bin/python benchmarks/bench_precision.py --arch camunet --width 32 36   # same run
    .venv/bin/python benchmarks/bench_precision.py --quick    # seconds: tiny sizes (CI)
"""

from __future__ import annotations

import argparse

import torch
from timing import best_of

from nucseg.models import ModelConfig, build_model, count_parameters
from nucseg.precision import autocast, channels_last, cpu_has_native_bf16

CPU = torch.device("cpu")


def variants() -> list[tuple[str, torch.dtype | None, bool]]:
    """(name, autocast dtype, channels-last) of each measured variant."""
    rows = [("fp32", None, False), ("fp32 + channels-last", None, True)]
    if cpu_has_native_bf16():
        rows += [("bf16", torch.bfloat16, False), ("bf16 + channels-last", torch.bfloat16, True)]
    return rows


def inference_rate(net: ModelConfig, dtype, last: bool, batch: int, size: int, repeats: int):
    torch.manual_seed(0)
    model = build_model(net).eval()
    inputs = torch.rand(batch, net.in_channels, size, size)
    if last:
        model, inputs = channels_last(model), channels_last(inputs)

    def run():
        with torch.inference_mode(), autocast(CPU, dtype):
            model(inputs)

    run()  # warm-up: oneDNN picks its kernels
    return batch / best_of(run, repeats)


def training_rate(net: ModelConfig, dtype, last: bool, batch: int, size: int, repeats: int):
    torch.manual_seed(0)
    model = build_model(net)
    optimizer = torch.optim.Adam(model.parameters())
    inputs = torch.rand(batch, net.in_channels, size, size)
    targets = (torch.rand(batch, len(net.heads), size, size) > 0.5).float()
    if last:
        model, inputs = channels_last(model), channels_last(inputs)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(CPU, dtype):
            logits = model(inputs).float32().masks
        torch.nn.functional.binary_cross_entropy_with_logits(logits, targets).backward()
        optimizer.step()

    step()
    return batch / best_of(step, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="unet")
    parser.add_argument(
        "--width", type=int, nargs="+", default=[16], help="each measured in turn, same run"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (CI)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        nets = [ModelConfig(arch=args.arch, base_width=4, depth=2)]
        shapes, repeats = {"inference": [(2, 64)], "training": [(2, 32)]}, 1
    else:
        nets = [ModelConfig(arch=args.arch, base_width=width) for width in args.width]
        shapes, repeats = {"inference": [(8, 256)], "training": [(8, 128), (8, 256)]}, 3
    for net in nets:
        print(
            f"{args.arch}-{net.base_width}/{net.depth}, "
            f"{count_parameters(build_model(net)) / 1e6:.2f} M parameters, {args.threads} threads,"
            f" native bf16: {cpu_has_native_bf16()}"
        )
        for kind, measure in (("inference", inference_rate), ("training", training_rate)):
            for batch, size in shapes[kind]:
                rates = {
                    name: measure(net, dtype, last, batch, size, repeats)
                    for name, dtype, last in variants()
                }
                base = rates["fp32"]
                cells = ", ".join(f"{k} {v:.1f} img/s (x{v / base:.2f})" for k, v in rates.items())
                print(f"{kind}, batch {batch} at {size}x{size}: {cells}", flush=True)


if __name__ == "__main__":
    main()
