"""Benchmark the vectorised torch augmentation against a per-sample scipy loop.

Baseline (same run, same batch): for each crop and channel, ``scipy.ndimage.affine_transform``
for rotation/scale/flip, then ``map_coordinates`` with a Gaussian-smoothed random
displacement field (the classic Simard et al. elastic recipe most Kaggle kernels used), order
1 for the image and 0 for the targets.  Both do the same kinds of work per pixel.

    .venv/bin/python benchmarks/bench_augment.py
    .venv/bin/python benchmarks/bench_augment.py --quick    # seconds: batch 2 at 64x64 (CI)
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy import ndimage as ndi
from timing import best_of

from nucseg.augment import AugmentConfig, augment_batch


def scipy_loop(rng, images: np.ndarray, targets: np.ndarray, alpha=2.0, sigma=8.0):
    out_images, out_targets = np.empty_like(images), np.empty_like(targets)
    size = images.shape[-1]
    centre = (size - 1) / 2
    for n in range(images.shape[0]):
        angle = np.deg2rad(rng.integers(4) * 90 + rng.uniform(-10, 10))
        zoom = np.exp(rng.uniform(-0.14, 0.14))
        matrix = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) * zoom
        offset = centre - matrix @ [centre, centre]
        dx = ndi.gaussian_filter(rng.uniform(-1, 1, (size, size)), sigma) * alpha * sigma
        dy = ndi.gaussian_filter(rng.uniform(-1, 1, (size, size)), sigma) * alpha * sigma
        rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
        coords = [rows + dy, cols + dx]
        for stack, out, order in ((images, out_images, 1), (targets, out_targets, 0)):
            for c in range(stack.shape[1]):
                moved = ndi.affine_transform(
                    stack[n, c], matrix, offset, order=order, mode="reflect"
                )
                out[n, c] = ndi.map_coordinates(moved, coords, order=order, mode="reflect")
    return out_images, out_targets


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 2 at 64x64 (CI)")
    args = parser.parse_args()
    batch, size = (2, 64) if args.quick else (8, 256)
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    images = rng.random((batch, 1, size, size), dtype=np.float32)
    targets = (rng.random((batch, 4, size, size)) > 0.5).astype(np.float32)
    generator = torch.Generator().manual_seed(0)
    ours = best_of(
        lambda: augment_batch(
            generator, torch.from_numpy(images), torch.from_numpy(targets), AugmentConfig()
        )
    )
    base = best_of(lambda: scipy_loop(rng, images, targets), repeats=2)
    print(f"batch of {batch} crops {size}x{size}, 1 image + 4 target channels, 2 threads")
    print(f"nucseg.augment.augment_batch (geometry + elastic + intensity): {ours * 1e3:.1f} ms")
    print(f"per-sample scipy affine_transform + map_coordinates loop: {base * 1e3:.1f} ms")
    print(f"ratio: x{base / ours:.1f}")


if __name__ == "__main__":
    main()
