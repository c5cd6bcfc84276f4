"""Benchmark nucseg's RLE encoder and DSB metric against the common Kaggle-kernel versions.

Baselines, measured in the same run on the same generated images:
- RLE: the popular per-mask loop (one boolean mask per nucleus, ``mask.T.flatten()``,
  run boundaries by comparing shifted copies), as in many DSB2018 public kernels;
- metric: the ``np.histogram2d`` intersection table of the Kaggle "IoU metric" kernel, with
  its per-threshold TP/FP/FN loop.

    .venv/bin/python benchmarks/bench_rle_metric.py
    .venv/bin/python benchmarks/bench_rle_metric.py --quick    # seconds: 2 small images (CI)
"""

from __future__ import annotations

import argparse

import numpy as np
from timing import best_of

from nucseg.metrics import DSB_THRESHOLDS, dsb_score
from nucseg.rle import encode_labels
from nucseg.synth.nuclei import SynthConfig, generate


def rle_per_mask_loop(labels: np.ndarray) -> list[str]:
    encodings = []
    for label in range(1, labels.max() + 1):
        pixels = np.concatenate([[0], (labels == label).T.flatten(), [0]])
        runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
        runs[1::2] -= runs[::2]
        encodings.append(" ".join(str(x) for x in runs))
    return encodings


def dsb_histogram2d(truth: np.ndarray, pred: np.ndarray) -> float:
    n_true, n_pred = len(np.unique(truth)), len(np.unique(pred))
    intersection = np.histogram2d(truth.flatten(), pred.flatten(), bins=(n_true, n_pred))[0]
    area_true = np.histogram(truth, bins=n_true)[0][:, None]
    area_pred = np.histogram(pred, bins=n_pred)[0][None, :]
    iou = (intersection / (area_true + area_pred - intersection))[1:, 1:]
    precisions = []
    for t in DSB_THRESHOLDS:
        matches = iou > t
        tp = np.sum(np.sum(matches, axis=1) == 1)
        fp = np.sum(np.sum(matches, axis=0) == 0)
        fn = np.sum(np.sum(matches, axis=1) == 0)
        precisions.append(tp / (tp + fp + fn))
    return float(np.mean(precisions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 images of 128x128 (CI)")
    args = parser.parse_args()
    if args.quick:
        config = SynthConfig(n_images=2, seed=7, shapes=((128, 128),), shape_weights=(1.0,))
    else:
        config = SynthConfig(
            n_images=12, seed=7, shapes=((256, 256), (520, 696)), shape_weights=(0.5, 0.5)
        )
    images = generate(config, "bench")
    truths = [i.instance_labels for i in images]
    # a plausible prediction: each truth shifted by one pixel
    preds = [np.roll(t, 1, axis=1) for t in truths]
    n_nuclei = sum(int(t.max()) for t in truths)
    for truth in truths:
        assert list(encode_labels(truth).values()) == rle_per_mask_loop(truth)
    for truth, pred in zip(truths, preds, strict=True):
        assert np.isclose(dsb_score(truth, pred), dsb_histogram2d(truth, pred))
    t_rle = best_of(lambda: [encode_labels(t) for t in truths])
    t_rle_base = best_of(lambda: [rle_per_mask_loop(t) for t in truths])
    t_metric = best_of(lambda: [dsb_score(t, p) for t, p in zip(truths, preds, strict=True)])
    t_metric_base = best_of(
        lambda: [dsb_histogram2d(t, p) for t, p in zip(truths, preds, strict=True)]
    )
    print(f"{len(truths)} images, {n_nuclei} nuclei (identical outputs checked)")
    for name, ours, base, base_name in [
        ("RLE", t_rle, t_rle_base, "per-mask loop"),
        ("metric", t_metric, t_metric_base, "histogram2d"),
    ]:
        print(
            f"{name:6s} nucseg {ours * 1e3:8.1f} ms   {base_name:13s} {base * 1e3:8.1f} ms"
            f"   speed-up x{base / ours:.1f}"
        )


if __name__ == "__main__":
    main()
