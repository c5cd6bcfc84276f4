"""Accuracy of models on real images they never saw, as ``nucseg predict`` runs them.

Sets (from ``--realdata``, the shared real data):

- ``dsb``, ``monuseg``, ``ctc``: DSB2018 stage1_train, MoNuSeg tiles and the four fully
  annotated Fluo-N2DH-GOWT1 frames, each image only if it is on the held-out side of the
  model's ``split.tsv`` or not in its dataset at all (for a model of an acquisition fold:
  leave-acquisition-out; for an origin fold: held-out images of seen acquisitions);
- ``coelho``, ``gbm40``: the outside evaluation sets (fluorescence from another lab, H&E
  of another organ and hospital), never trained on;
- ``coelho16``, ``ctc16``: those 8-bit images as a 16-bit camera records them (offset
  33,000, 4 electrons per gray level, shot and read noise:
  :func:`nucseg.synth.nuclei.camera_frame`).

Each image is normalised as recorded in the checkpoint, predicted (TTA views, scales,
precision), separated with the model's ``thresholds.json`` and scored (DSB2018 metric); the
mean per model, variant, set and category is printed.  Several ``--model`` folders are
measured in one run; ``--variants own`` runs each with its folder's ``predict.json``.
``--ensemble`` measures the ``--model`` folders as one ensemble instead (their maps averaged
as ``nucseg predict --model a --model b`` does, each model at its own chosen scale; the first
folder's thresholds and settings; an image counts if no member trained on it).

    .venv/bin/python benchmarks/bench_realdata.py --model resources/models/dsb36gen20 \\
        --sets dsb coelho gbm40 coelho16 --variants own
    .venv/bin/python benchmarks/bench_realdata.py --model resources/models/dsb36gen20 --sets dsb \\
        --variants scales-every-view scales scales@0,5 scales@0   # the cost of views and scales
    .venv/bin/python benchmarks/bench_realdata.py --model resources/models/dsb36gen20 \\
        results/export/acq32all --ensemble --sets coelho gbm40 --variants scales@0,5
    .venv/bin/python benchmarks/bench_realdata.py --quick    # seconds: a tiny untrained model (CI)
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple
from unittest.mock import patch

import numpy as np
import pandas as pd
import torch

from nucseg.checkpoints import checkpoint_normalization, network_of, read_checkpoint
from nucseg.ensemble import weighted_mean
from nucseg.evaluation import EvaluationSet, score_images, summarize_evaluation
from nucseg.models import ModelConfig, build_model
from nucseg.normalize import NormalizeConfig
from nucseg.postprocess import PostprocessConfig, read_thresholds
from nucseg.precision import cpu_has_native_bf16
from nucseg.predict import (
    PredictConfig,
    _predict_native,
    _scaled,
    describe_gate,
    map_confidence,
    network_for,
    predict_probability,
    resize_maps,
)
from nucseg.segmenter import diameter_scale, folder_predict_settings, predict_config
from nucseg.synth.nuclei import SynthConfig, generate

CPU = torch.device("cpu")
SETS = {  # name: (format, folder under --realdata, only the held-out side of a split, camera)
    "dsb": ("kaggle_stage1", "dsb2018/stage1_train", True, False),
    "monuseg": ("monuseg", "monuseg", True, False),
    "ctc": ("ctc", "ctc/Fluo-N2DH-GOWT1", True, False),
    "coelho": ("folder", "coelho2009_gnf", False, False),
    "gbm40": ("folder", "gbm40", False, False),
    "coelho16": ("folder", "coelho2009_gnf", False, True),
    "ctc16": ("ctc", "ctc/Fluo-N2DH-GOWT1", True, True),
}


def real_sets(realdata: Path, split: pd.Series, names: list[str]) -> dict[str, Iterator]:
    """``{set: (id, image, labels) ...}`` of the requested sets (see the module doc)."""

    def held_out(image_id: str) -> bool:  # images outside the model's dataset count too
        return split.get(image_id, "valid") == "valid"

    sets = {}
    for name in names:
        fmt, folder, held_out_only, camera = SETS[name]
        evaluation_set = EvaluationSet(name, fmt, realdata / folder, camera)
        sets[name] = evaluation_set.images(held_out) if held_out_only else evaluation_set.images()
    return sets


def quick_network():
    """The quick runs' network (CI): a tiny CAMUNet, untrained, seeded."""
    torch.manual_seed(0)
    return build_model(ModelConfig(arch="camunet", base_width=4, depth=2)).eval()


def generated_set() -> dict[str, list]:
    images = generate(
        SynthConfig(n_images=2, seed=3, shapes=((96, 96),), shape_weights=(1.0,)), "r"
    )
    return {"generated": [(i.image_id, i.pixels, i.instance_labels) for i in images]}


def variants_of(model_dir: Path | None, args) -> dict[str, Variant]:
    """The prediction settings to measure: ``own`` (the folder's predict.json), ``full``
    (full size), ``scales`` (``--scales``), ``scales@<views>`` (``--scales`` with other test-time
    views), ``fp32`` (full size in float32), ``diameter`` (one pass at the scale
    ``--diameter`` gives, as ``nucseg predict --diameter``); suffixes, combinable:
    ``+compile`` the same through ``torch.compile``, ``+fp32`` in float32, ``+dim`` /
    ``+no-dim`` with / without the dim-nuclei pass (``predict.dim_gamma`` 0.5 / 0), ``+dim-every``
    with it on every fluorescence image (without :func:`nucseg.predict.has_dim_candidates`'
    gate), ``+as-trained``
    the network as its checkpoint holds it (prediction folds its batch norms and stores its
    convolutions in bf16: :func:`nucseg.predict.network_for`; ``scales-every-view``, the old
    defaults' baseline, runs it as trained too, and reads images called brightfield as
    brightfield and colour fluorescence by its brightest plane without asking the network:
    ``predict.check_polarity`` and ``check_blue`` came later).
    Returns ``{label: Variant}``."""
    views = tuple(int(v) for v in args.views.split(","))
    scales = tuple(float(v) for v in args.scales.split(","))
    own = predict_config([model_dir]) if model_dir else PredictConfig()
    learned = folder_predict_settings([model_dir]).get("nucleus_diameter") if model_dir else None
    diameter = args.diameter or 0.0
    enlarged = f", x2 below {describe_gate(own.enlarge_below)}" if own.enlarge_below else ""
    options = {
        "own": (f"own {list(own.views)} x {list(own.scales)}{enlarged}", own),
        "full": ("full size", PredictConfig(views=views)),
        "scales": (f"scales {args.scales}", PredictConfig(views=views, scales=scales)),
        "fp32": ("full size, fp32", PredictConfig(views=views, precision="fp32")),
    }
    parsed = [variant_suffixes(v) for v in args.variants]
    bases = {base for base, _ in parsed}
    if "scales-every-view" in bases:  # the scale search as it was: every view, every scale
        label = f"scales {args.scales}, every view at every scale"
        as_it_was = PredictConfig(
            views=views, scales=scales, check_polarity=False, check_blue=False
        )
        options["scales-every-view"] = (label, as_it_was)
    for base in bases:  # scales@0,5: the scale search with other views
        if base.startswith("scales@"):
            other_views = tuple(int(v) for v in base.removeprefix("scales@").split(","))
            label = f"scales {args.scales}, views {list(other_views)}"
            options[base] = (label, PredictConfig(views=other_views, scales=scales))
    if "diameter" in bases:  # the one scale --diameter gives (nuclei of that size)
        scale = diameter_scale(learned or diameter, diameter) if diameter else 1.0
        options["diameter"] = (
            f"diameter {diameter:g} px",
            PredictConfig(views=views, scales=(scale,)),
        )
    measured = {}
    for base, suffixes in parsed:
        if (base == "fp32" or "fp32" in suffixes) and not cpu_has_native_bf16():
            continue  # every variant runs in float32 then
        baseline = base == "scales-every-view"  # the defaults as they were: batch norms too
        as_trained = baseline or "as-trained" in suffixes
        if as_trained and "compile" in suffixes:
            raise SystemExit("networks as trained (scales-every-view, +as-trained) run eagerly")
        label, predict = options[base]
        if "fp32" in suffixes:
            label, predict = f"{label}, fp32", replace(predict, precision="fp32")
        if "compile" in suffixes:
            label, predict = f"{label}, compiled", replace(predict, compile=True)
        if "dim" in suffixes:  # the dim-nuclei pass at 0.5 (or off: +no-dim)
            label, predict = f"{label}, dim gamma 0.5", replace(predict, dim_gamma=0.5)
        if "no-dim" in suffixes:
            label, predict = f"{label}, no dim pass", replace(predict, dim_gamma=0.0)
        if "dim-every" in suffixes:
            label = f"{label}, dim gamma 0.5 on every fluorescence image"
            predict = replace(predict, dim_gamma=0.5)
        if "as-trained" in suffixes:  # not prepared as prediction prepares it
            label = f"{label}, as trained"
        measured[label] = Variant(
            predict,
            every_view_every_scale=baseline,
            prepared=not as_trained,
            ungated_dim_pass="dim-every" in suffixes,
        )
    return measured


class Variant(NamedTuple):
    """One measured variant: its settings, whether it runs the old every-view-every-scale
    search, whether its network is prepared as prediction prepares it, and whether its
    dim-nuclei pass runs on every fluorescence image."""

    predict: PredictConfig
    every_view_every_scale: bool
    prepared: bool
    ungated_dim_pass: bool


def variant_suffixes(variant: str) -> tuple[str, set[str]]:
    """``own+fp32+compile`` -> ``("own", {"fp32", "compile"})``; unknown suffixes exit."""
    base, *suffixes = variant.split("+")
    unknown = set(suffixes) - {"compile", "fp32", "as-trained", "dim", "no-dim", "dim-every"}
    if unknown:
        raise SystemExit(f"--variants {variant}: unknown suffix {sorted(unknown)[0]}")
    return base, set(suffixes)


class Ensemble(list):
    """Networks whose maps are averaged (``--ensemble``); ``ensemble_predictor`` runs them."""


def ensemble_predictor(predictor):
    """``predictor`` for one network or, given an :class:`Ensemble`, the mean of its
    members' maps (:func:`nucseg.ensemble.weighted_mean`, as :class:`nucseg.Segmenter`)."""

    def predict(model, pixels, device, settings, category):
        if not isinstance(model, Ensemble):
            return predictor(model, pixels, device, settings, category)
        maps = [{"image": predictor(m, pixels, device, settings, category)} for m in model]
        return weighted_mean(maps)["image"]

    return predict


def load_model_folder(model_dir: Path):
    """``(network, normalisation, thresholds, split side by id)`` of an exported folder
    (the network as its checkpoint holds it, eager on the CPU: variants fold its batch
    norms, store its convolutions in bf16 and compile it as prediction does,
    :func:`nucseg.predict.network_for`)."""
    payload = read_checkpoint(model_dir / "model.pt")
    model = network_of(payload, model_dir / "model.pt", CPU)
    normalize = checkpoint_normalization(payload, model_dir / "model.pt")
    thresholds = read_thresholds(model_dir / "thresholds.json")
    split = pd.read_csv(model_dir / "split.tsv", sep="\t", dtype=str)
    return model, normalize, thresholds, split.set_index("id").side


def load_ensemble(model_dirs: list[Path]):
    """:func:`load_model_folder` of several folders as one :class:`Ensemble`: the first
    folder's thresholds; an image is on the training side if any member trained on it."""
    loaded = [load_model_folder(d) for d in model_dirs]
    if len({normalize for _, normalize, _, _ in loaded}) > 1:
        raise SystemExit("--ensemble: the models were trained on differently normalised images")
    trained = pd.concat([split == "train" for *_, split in loaded], axis=1).fillna(False)
    split = trained.any(axis=1).map({True: "train", False: "valid"})
    _, normalize, thresholds, _ = loaded[0]
    return Ensemble(m for m, *_ in loaded), normalize, thresholds, split


@torch.inference_mode()
def every_view_every_scale(model, pixels, device, predict: PredictConfig, category=None):
    """The scale search as it was before the first-view choice: every view at every scale,
    the most confident scale's mean kept (the baseline of variant ``scales-every-view``;
    no image enlarged, whatever its category)."""
    best_confidence, best = -1.0, None
    for scale in predict.scales:
        prob = _predict_native(model, _scaled(pixels, scale), device, predict)
        confidence = map_confidence(prob)
        if confidence > best_confidence:
            best_confidence, best = confidence, prob
    if best.shape[-2:] != pixels.shape[-2:]:
        best = np.clip(resize_maps(best, pixels.shape[-2:]), 0, 1)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, nargs="+", help="shipped/exported model folders")
    parser.add_argument("--realdata", type=Path, default=Path("resources/realdata"))
    parser.add_argument("--sets", nargs="+", default=["ctc", "monuseg"])
    parser.add_argument("--views", default="0,2,5,7")
    parser.add_argument("--scales", default="1,0.5,0.33", help="the multi-scale variant")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["full", "scales"],
        help="own, full, scales, scales@<views> (e.g. scales@0,5), scales-every-view, fp32, "
        "diameter (--diameter); any with +compile (e.g. own+compile), +fp32 (float32) or "
        "+as-trained (the network not prepared for prediction)",
    )
    parser.add_argument(
        "--diameter", type=float, help="the diameter variant: nuclei this many pixels across"
    )
    parser.add_argument("--out", type=Path, help="per-image table (default: a temporary file)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ensemble", action="store_true", help="the --model folders as one")
    parser.add_argument("--quick", action="store_true", help="tiny untrained model (CI)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tables = []
    groups = [args.model] if args.ensemble else [[m] for m in args.model or [None]]
    for members in groups:
        model_dir = members[0]
        if args.quick:
            model = quick_network()
            normalize, thresholds, split = NormalizeConfig(), PostprocessConfig(), None
            args.views = "0"
        elif args.ensemble:
            model, normalize, thresholds, split = load_ensemble(members)
        else:
            model, normalize, thresholds, split = load_model_folder(model_dir)
        networks = {}  # by (compiled, prepared, precision): one compilation serves them all
        for label, (predict, baseline, prepared, ungated) in variants_of(model_dir, args).items():
            sets = generated_set() if args.quick else real_sets(args.realdata, split, args.sets)
            predictor = every_view_every_scale if baseline else predict_probability
            predictor = ensemble_predictor(predictor)
            key = (predict.compile, prepared, predict.precision)
            if key not in networks:
                nets = model if isinstance(model, Ensemble) else [model]
                ready = [network_for(m, predict) if prepared else m for m in nets]
                networks[key] = Ensemble(ready) if isinstance(model, Ensemble) else ready[0]
            net = networks[key]
            gate = patch("nucseg.predict.has_dim_candidates", return_value=True)
            with gate if ungated else nullcontext():
                table = score_images(net, normalize, thresholds, sets, predict, CPU, predictor)
            table.insert(0, "variant", label)
            name = "+".join(m.name for m in members) if model_dir else "quick"
            table.insert(0, "model", name)
            tables.append(table)
            print(f"{name}, {label}:")  # as each variant ends: long runs show progress
            print(summarize_evaluation(table).to_string(index=False), flush=True)
    results = pd.concat(tables, ignore_index=True)
    out = args.out or Path(tempfile.mkstemp(suffix=".tsv")[1])
    results.to_csv(out, sep="\t", index=False)
    print(f"per image: {out}")


if __name__ == "__main__":
    main()
