"""Threshold tuning: the grid search as it was (every grid point post-processes every image
from scratch, one process) against nucseg.tuning.score_table (masks once per mask
threshold, seeds once per marker threshold and split height, images over worker
processes), same maps, same grid, same run; checks both give the same scores.  The maps are
a model's validation maps, kept when the real-data run has ``predict.keep_maps: true``:

    .venv/bin/python benchmarks/bench_tuning.py \
        --maps results/validation/dsb36/model-real_he-0.npz \
        --fold results/datasets/real_he/folds/0
    .venv/bin/python benchmarks/bench_tuning.py --quick    # seconds: generated maps (CI)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from nucseg.io.arrays import load_arrays
from nucseg.metrics import dsb_score
from nucseg.postprocess import PostprocessConfig, instances_from_probability
from nucseg.synth.nuclei import SynthConfig, generate
from nucseg.targets import compute_targets
from nucseg.tuning import DEFAULT_GRID, grid_configs, load_validation, score_table


def per_grid_point(probs, labels, configs) -> dict[str, np.ndarray]:
    """The baseline: every grid point runs the whole post-processing on every image."""
    return {
        i: np.array([dsb_score(labels[i], instances_from_probability(p, c)) for c in configs])
        for i, p in probs.items()
    }


def generated_maps(n_images: int) -> tuple[dict, dict]:
    images = generate(
        SynthConfig(n_images=n_images, seed=5, shapes=((128, 128),), shape_weights=(1.0,)), "q"
    )
    probs, labels = {}, {}
    for k, image in enumerate(images):
        targets = compute_targets(image.instance_labels)[:3]
        probs[str(k)] = np.clip(ndi.gaussian_filter(targets, (0, 1.5, 1.5)), 0, 1)
        labels[str(k)] = image.instance_labels
    return probs, labels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=Path, help="validation maps (rule predict_validation)")
    parser.add_argument("--fold", type=Path, help="the fold they are of")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, help="only the first N images (sorted ids)")
    parser.add_argument("--quick", action="store_true", help="4 generated images, small grid")
    args = parser.parse_args()
    grid = DEFAULT_GRID
    if args.quick or args.maps is None:
        probs, labels = generated_maps(4 if args.quick else 24)
        if args.quick:
            grid = {"mask_threshold": [0.4, 0.5], "marker_threshold": [0.5, 0.7], "split_h": [0]}
    else:
        probs = {k: v.astype(np.float32) for k, v in load_arrays(args.maps).items()}
        labels = load_validation(args.fold)[1]
    if args.limit:
        keep = sorted(probs)[: args.limit]
        probs, labels = {i: probs[i] for i in keep}, {i: labels[i] for i in keep}
    configs = grid_configs(PostprocessConfig(), grid)
    start = time.perf_counter()
    baseline = per_grid_point(probs, labels, configs)
    before = time.perf_counter() - start
    start = time.perf_counter()
    shared = score_table(probs, labels, configs, args.threads)
    after = time.perf_counter() - start
    same = all(np.array_equal(baseline[i], shared[i]) for i in probs)
    print(
        f"{len(probs)} images x {len(configs)} threshold sets: per grid point {before:.1f} s, "
        f"shared stages on {args.threads} processes {after:.1f} s (x{before / after:.1f}); "
        f"identical scores: {same}"
    )
    if not same:
        raise SystemExit("the two searches disagree")


if __name__ == "__main__":
    main()
