"""Accuracy of models on real images they never saw, as ``nucseg predict`` runs them.

Sets (from ``--realdata``, the shared real data):

- ``dsb``, ``monuseg``, ``ctc``: DSB2018 stage1_train, MoNuSeg tiles and the four fully
  annotated Fluo-N2DH-GOWT1 frames, each image only if it is on the held-out side of the
  model's ``split.tsv`` or not in its dataset at all (for a model of an acquisition fold:
  leave-acquisition-out; for an origin fold: held-out images of seen acquisitions);
- ``coelho``, ``gbm40``: the outside evaluation sets (fluorescence from another lab, H&E
  of another organ and hospital), never trained on;
- ``coelho16``, ``ctc16``: those 8-bit images as a 16-bit camera records them (offset
  33,000, 4 electrons per gray level, shot and read noise: :func:`nucseg.synth.camera_frame`).

Each image is normalised as recorded in the checkpoint, predicted (TTA views, scales,
precision), separated with the model's ``thresholds.json`` and scored (DSB2018 metric); the
mean per model, variant, set and category is printed.  Several ``--model`` folders are
measured in one run; ``--variants own`` runs each with its folder's ``predict.json``.

    .venv/bin/python benchmarks/bench_realdata.py --model resources/models/dsb36 \\
        --sets dsb coelho gbm40 coelho16 --variants own
    .venv/bin/python benchmarks/bench_realdata.py --quick    # seconds: a tiny untrained model (CI)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nucseg.inference import shipped_predict_settings
from nucseg.io.images import read_image
from nucseg.io.sources import list_source
from nucseg.metrics import dsb_score
from nucseg.models import ModelConfig, build_model
from nucseg.normalize import NormalizeConfig, normalize_image
from nucseg.postprocess import PostprocessConfig, instances_from_probability, read_thresholds
from nucseg.precision import cpu_has_native_bf16
from nucseg.predict import (
    PredictConfig,
    checkpoint_normalization,
    network_of,
    predict_probability,
    read_checkpoint,
)
from nucseg.synth import SynthConfig, camera_frame, generate

CPU = torch.device("cpu")
SETS = {  # name: (format, folder under --realdata, only the held-out side of a split)
    "dsb": ("kaggle_stage1", "dsb2018/stage1_train", True),
    "monuseg": ("monuseg", "monuseg", True),
    "ctc": ("ctc", "ctc/Fluo-N2DH-GOWT1", True),
    "coelho": ("folder", "coelho2009_gnf", False),
    "gbm40": ("folder", "gbm40", False),
}
CAMERA_SETS = {"coelho16": "coelho", "ctc16": "ctc"}


def real_sets(realdata: Path, split: pd.Series, names: list[str]) -> dict[str, list]:
    """``{set: [(id, image, labels), ...]}`` of the requested sets (see the module doc)."""
    sets = {}
    for name in names:
        fmt, folder, held_out_only = SETS[CAMERA_SETS.get(name, name)]
        items = list_source(fmt, realdata / folder)
        if held_out_only:
            items = [i for i in items if split.get(i.image_id, "valid") == "valid"]
        rng = np.random.default_rng(0)
        sets[name] = []
        for item in items:
            image = read_image(item.image_path)
            labels = item.read_labels(image.shape[:2])
            if name in CAMERA_SETS:
                image = camera_frame(image, rng)
            sets[name].append((item.image_id, image, labels))
    return sets


def generated_set() -> dict[str, list]:
    images = generate(
        SynthConfig(n_images=2, seed=3, shapes=((96, 96),), shape_weights=(1.0,)), "r"
    )
    return {"generated": [(i.image_id, i.pixels, i.instance_labels) for i in images]}


def evaluate(model, normalize, thresholds, sets, predict: PredictConfig) -> pd.DataFrame:
    rows = []
    for name, items in sets.items():
        for image_id, image, labels in items:
            pixels, category = normalize_image(image, normalize)
            start = time.perf_counter()
            prob = predict_probability(model, pixels, CPU, predict)
            found = instances_from_probability(prob, thresholds)
            rows.append(
                {
                    "set": name,
                    "category": category,
                    "id": image_id,
                    "dsb": dsb_score(labels, found),
                    "n_true": int(labels.max()),
                    "n_pred": int(found.max()),
                    "seconds": time.perf_counter() - start,
                }
            )
    return pd.DataFrame(rows)


def variants_of(model_dir: Path | None, args) -> dict[str, PredictConfig]:
    """The prediction settings to measure: ``own`` (the folder's predict.json), ``full``
    (full size), ``scales`` (``--scales``), ``fp32`` (full size in float32)."""
    views = tuple(int(v) for v in args.views.split(","))
    scales = tuple(float(v) for v in args.scales.split(","))
    shipped = shipped_predict_settings([model_dir]) if model_dir else {}
    own = PredictConfig.from_config({k: v for k, v in shipped.items() if k != "tile"})
    options = {
        "own": (f"own {list(own.views)} x {list(own.scales)}", own),
        "full": ("full size", PredictConfig(views=views)),
        "scales": (f"scales {args.scales}", PredictConfig(views=views, scales=scales)),
        "fp32": ("full size, fp32", PredictConfig(views=views, precision="fp32")),
    }
    chosen = [v for v in args.variants if v != "fp32" or cpu_has_native_bf16()]
    return dict(options[v] for v in chosen)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, nargs="+", help="shipped/exported model folders")
    parser.add_argument("--realdata", type=Path, default=Path("resources/realdata"))
    parser.add_argument("--sets", nargs="+", default=["ctc", "monuseg"])
    parser.add_argument("--views", default="0,2,5,7")
    parser.add_argument("--scales", default="1,0.5,0.33", help="the multi-scale variant")
    parser.add_argument(
        "--variants", nargs="+", default=["full", "scales"], help="own, full, scales, fp32"
    )
    parser.add_argument("--out", type=Path, help="per-image table (default: a temporary file)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny untrained model (CI)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tables = []
    for model_dir in args.model or [None]:
        if args.quick:
            torch.manual_seed(0)
            model = build_model(ModelConfig(arch="camunet", base_width=4, depth=2)).eval()
            normalize, thresholds, sets = NormalizeConfig(), PostprocessConfig(), generated_set()
            args.views = "0"
        else:
            payload = read_checkpoint(model_dir / "model.pt")
            model = network_of(payload, model_dir / "model.pt", CPU)
            normalize = checkpoint_normalization(payload, model_dir)
            thresholds = read_thresholds(model_dir / "thresholds.json")
            split = pd.read_csv(model_dir / "split.tsv", sep="\t", dtype=str)
            sets = real_sets(args.realdata, split.set_index("id").side, args.sets)
        for label, predict in variants_of(model_dir, args).items():
            table = evaluate(model, normalize, thresholds, sets, predict)
            table.insert(0, "variant", label)
            table.insert(0, "model", model_dir.name if model_dir else "quick")
            tables.append(table)
    results = pd.concat(tables, ignore_index=True)
    summary = results.groupby(["model", "variant", "set", "category"], sort=False).agg(
        images=("id", "size"),
        dsb=("dsb", "mean"),
        n_true=("n_true", "sum"),
        n_pred=("n_pred", "sum"),
        seconds=("seconds", "sum"),
    )
    print(summary.round(4).to_string())
    out = args.out or Path(tempfile.mkstemp(suffix=".tsv")[1])
    results.to_csv(out, sep="\t", index=False)
    print(f"per image: {out}")


if __name__ == "__main__":
    main()
