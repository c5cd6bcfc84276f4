"""Accuracy of a shipped model on real held-out images, as ``nucseg predict`` runs it.

Sets (from ``--realdata``, the shared real data): ``ctc``, the four fully annotated
Fluo-N2DH-GOWT1 frames (never trained on); ``monuseg``, the MoNuSeg tiles on the held-out
side of the model's ``split.tsv``; ``dsb``, the DSB2018 images on that side.  Each image is
normalised as recorded in the checkpoint, predicted (TTA views, precision), separated with
the model's ``thresholds.json`` and scored (DSB2018 metric); the mean per set and category
is printed for each variant: at full size, at the best of several scales
(:class:`nucseg.predict.PredictConfig` ``scales``), with the folder's own settings, and
with ``--fp32`` the model run in float32 against bfloat16 (same run).

    .venv/bin/python benchmarks/bench_realdata.py --model resources/models/dsb36 \\
        --realdata resources/realdata --sets ctc monuseg
    .venv/bin/python benchmarks/bench_realdata.py --quick    # seconds: a tiny untrained model (CI)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

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
from nucseg.synth import SynthConfig, generate

CPU = torch.device("cpu")


def real_sets(realdata: Path, split: pd.Series, names: list[str]) -> dict[str, list]:
    """``{set: [(id, image, labels), ...]}`` of the requested held-out sets."""
    sources = {
        "ctc": ("ctc", realdata / "ctc" / "Fluo-N2DH-GOWT1", lambda i: True),
        "monuseg": ("monuseg", realdata / "monuseg", lambda i: split.get(i) == "valid"),
        "dsb": (
            "kaggle_stage1",
            realdata / "dsb2018" / "stage1_train",
            lambda i: split.get(i) == "valid",
        ),
    }
    sets = {}
    for name in names:
        fmt, folder, keep = sources[name]
        items = [item for item in list_source(fmt, folder) if keep(item.image_id)]
        sets[name] = [
            (item.image_id, image, item.read_labels(image.shape[:2]))
            for item in items
            for image in [read_image(item.image_path)]
        ]
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a shipped model folder")
    parser.add_argument("--realdata", type=Path, default=Path("resources/realdata"))
    parser.add_argument("--sets", nargs="+", default=["ctc", "monuseg"])
    parser.add_argument("--views", default="0,1,2,3,4,5,6,7")
    parser.add_argument("--scales", default="1,0.5,0.33", help="the multi-scale variant")
    parser.add_argument("--fp32", action="store_true", help="also run the model in float32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny untrained model (CI)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    views = tuple(int(v) for v in args.views.split(","))
    if args.quick:
        torch.manual_seed(0)
        model = build_model(ModelConfig(arch="camunet", base_width=4, depth=2)).eval()
        normalize, thresholds, shipped = NormalizeConfig(), PostprocessConfig(), {}
        sets, views = generated_set(), (0,)
    else:
        payload = read_checkpoint(args.model / "model.pt")
        model = network_of(payload, args.model / "model.pt", CPU)
        normalize = checkpoint_normalization(payload, args.model)
        thresholds = read_thresholds(args.model / "thresholds.json")
        shipped = shipped_predict_settings([args.model])
        split = pd.read_csv(args.model / "split.tsv", sep="\t").set_index("id").side
        sets = real_sets(args.realdata, split, args.sets)
    scales = tuple(float(v) for v in args.scales.split(","))
    variants = {
        "full size": PredictConfig(views=views),
        f"scales {args.scales}": PredictConfig(views=views, scales=scales),
    }
    if shipped.get("scales") and tuple(shipped["scales"]) != scales:
        variants[f"shipped scales {shipped['scales']}"] = PredictConfig(
            views=views, scales=tuple(shipped["scales"])
        )
    if cpu_has_native_bf16() and args.fp32:
        variants["full size, fp32"] = PredictConfig(views=views, precision="fp32")
    tables = []
    for label, predict in variants.items():
        table = evaluate(model, normalize, thresholds, sets, predict)
        table.insert(0, "variant", label)
        tables.append(table)
    results = pd.concat(tables, ignore_index=True)
    summary = results.groupby(["variant", "set", "category"]).agg(
        images=("id", "size"),
        dsb=("dsb", "mean"),
        n_true=("n_true", "sum"),
        n_pred=("n_pred", "sum"),
        seconds=("seconds", "sum"),
    )
    print(summary.round(4).to_string())
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as handle:
        results.to_csv(handle, sep="\t", index=False)
        print(f"per image: {handle.name}")


if __name__ == "__main__":
    main()
