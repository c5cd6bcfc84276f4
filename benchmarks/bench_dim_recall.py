"""Dim nuclei found: recall of the nuclei the Cell Tracking Challenge annotated in its
partially annotated frames, with and without the dim-nuclei pass.

Fluo-N2DH-GOWT1 sequence 01 has 30 annotated frames; 4 label every nucleus, the other 26
one to three nuclei each, mostly dim ones (45 of the 48 below half the signal of the
frame's typical nucleus above its background; their median a tenth).  The
DSB score of a frame means nothing there (every other nucleus would be a false positive),
but the share of those annotated nuclei that a model segments (matched at IoU above 0.5)
says how many dim nuclei it finds on real frames.  Each frame is segmented as ``nucseg
predict`` runs the model (its folder's settings; the dim pass at ``predict.dim_gamma`` or
off), as it is (8-bit) and as a 16-bit camera records it (offset 33,000, shot and read
noise: :func:`nucseg.synth.nuclei.camera_frame`).

    .venv/bin/python benchmarks/bench_dim_recall.py --model resources/models/dsb36gen20
    .venv/bin/python benchmarks/bench_dim_recall.py --quick    # seconds: a tiny untrained model
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_realdata import CPU, generated_set, quick_network  # noqa: E402

from nucseg.io.images import read_image  # noqa: E402
from nucseg.io.sources import SourceOptions, list_source  # noqa: E402
from nucseg.metrics import matched_ious  # noqa: E402
from nucseg.normalize import NormalizeConfig  # noqa: E402
from nucseg.postprocess import PostprocessConfig  # noqa: E402
from nucseg.predict import PredictConfig  # noqa: E402
from nucseg.segmenter import Segmenter  # noqa: E402
from nucseg.synth.nuclei import camera_frame  # noqa: E402

CTC = "ctc/Fluo-N2DH-GOWT1"


def partial_frames(realdata: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``(id, frame, labels)`` of the CTC frames that label only some of their nuclei."""
    everything = list_source("ctc", realdata / CTC, SourceOptions(min_coverage=0.0))
    complete = {item.image_id for item in list_source("ctc", realdata / CTC, SourceOptions())}
    for item in everything:
        if item.image_id not in complete:
            image = read_image(item.image_path)
            yield item.image_id, image, item.read_labels(image.shape[:2])


def generated_frames() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """bench_realdata's generated images, half of their nuclei annotated (the quick run)."""
    for image_id, pixels, labels in generated_set()["generated"]:
        yield image_id, pixels, np.where(labels % 2 == 1, labels, 0)


def recall(truth: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
    """Annotated nuclei matched at IoU above 0.5 (unannotated predictions ignored), of all."""
    ious, n_true, _ = matched_ious(truth, labels)
    return int((ious >= 0.5).sum()), n_true


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("resources/models/dsb36gen20"))
    parser.add_argument("--realdata", type=Path, default=Path("resources/realdata"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny untrained model (CI)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        settings = (NormalizeConfig(), PostprocessConfig(), PredictConfig(dim_gamma=0.5))
        segmenter = Segmenter([quick_network()], *settings, CPU)
        frames = list(generated_frames())
    else:
        segmenter = Segmenter.from_folder(args.model, device="cpu")
        frames = list(partial_frames(args.realdata))
    gamma = segmenter.predict.dim_gamma or 0.5
    variants = {
        "no dim pass": replace(segmenter, predict=replace(segmenter.predict, dim_gamma=0.0)),
        f"dim pass ({gamma:g})": replace(
            segmenter, predict=replace(segmenter.predict, dim_gamma=gamma)
        ),
    }
    rng = np.random.default_rng(0)
    rows = []
    for image_id, image, truth in frames:
        for depth, pixels in (("8-bit", image), ("16-bit camera", camera_frame(image, rng))):
            for variant, seg in variants.items():
                found, annotated = recall(truth, seg.segment(pixels))
                rows.append((depth, variant, image_id, found, annotated))
    table = pd.DataFrame(rows, columns=["frames", "variant", "id", "found", "annotated"])
    summary = table.groupby(["frames", "variant"], sort=False)[["found", "annotated"]].sum()
    summary["recall"] = (summary.found / summary.annotated).round(3)
    summary.insert(0, "images", table.groupby(["frames", "variant"], sort=False).size())
    print(f"{'quick' if args.quick else args.model}: annotated nuclei found (IoU > 0.5)")
    print(summary.reset_index().to_string(index=False))


if __name__ == "__main__":
    main()
