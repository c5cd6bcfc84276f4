"""Do a model's post-processing thresholds carry over to real sets it never saw?

Each set's maps are predicted once as ``nucseg predict`` runs the model (its
``predict.json``; cached under ``--maps``), then every point of the threshold grid of
``--config`` (``postprocess.grid``, over the model's ``thresholds.json``) is scored per set
and detected category (the DSB2018 metric, :func:`nucseg.tuning.score_table`).  Printed: the
model's own thresholds, the best grid point of each set (what that set alone would
choose), and the point the workflow's tuning rule chooses on the development sets
(``--choose-on``: :func:`nucseg.tuning.grid_search`, acquisitions then categories weighted
equally, acquisitions clustered as datasets cluster them), scored on every set: the outside
sets only check it.  ``--tune`` searches only some fields of the grid; ``--retune FILE``
writes the choice as a thresholds file.

    .venv/bin/python benchmarks/bench_threshold_transfer.py --model resources/models/dsb36gen20 \\
        --sets dsb monuseg ctc gbm40 coelho --choose-on dsb monuseg --maps results/maps \\
        --tune mask_threshold --retune results/dsb36-thresholds.json
    .venv/bin/python benchmarks/bench_threshold_transfer.py --quick   # seconds (CI)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from bench_realdata import (  # noqa: E402
    CPU,
    SETS,
    generated_set,
    load_model_folder,
    quick_network,
    real_sets,
)

from nucseg.acquisitions import cluster_acquisitions, origin_signature  # noqa: E402
from nucseg.evaluation import EvaluationSet  # noqa: E402
from nucseg.normalize import NormalizeConfig, detect_category, normalize_image  # noqa: E402
from nucseg.postprocess import PostprocessConfig  # noqa: E402
from nucseg.predict import network_for, predict_probability, settle_reading  # noqa: E402
from nucseg.segmenter import predict_config  # noqa: E402
from nucseg.tuning import grid_configs, score_table, tuned_thresholds  # noqa: E402

QUICK_GRID = {"mask_threshold": [0.4, 0.6], "marker_threshold": [0.4]}


def predicted_maps(net, normalize, predict, items, cache: Path | None) -> dict:
    """``{id: (maps float16, labels, detected category)}`` of one set, read from ``cache``
    (an ``.npz``) when it exists, else predicted and written there."""
    if cache is not None and cache.exists():
        with np.load(cache) as saved:
            return {
                i: (saved[f"prob_{i}"], saved[f"labels_{i}"], str(c))
                for i, c in zip(saved["ids"], saved["categories"], strict=True)
            }
    maps = {}
    for image_id, image, labels in items:
        normalized = normalize_image(image, normalize)
        pixels, category = settle_reading(net, image, normalized, normalize, CPU, predict)
        prob = predict_probability(net, pixels, CPU, predict, category)
        maps[image_id] = (prob.astype(np.float16), labels.astype(np.int32), category)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"prob_{i}": m[0] for i, m in maps.items()}
        arrays |= {f"labels_{i}": m[1] for i, m in maps.items()}
        categories = [m[2] for m in maps.values()]
        np.savez_compressed(cache, ids=list(maps), categories=categories, **arrays)
    return maps


def acquisitions_of(name: str, items) -> dict[str, str]:
    """Image id -> acquisition of every image of a source, clustered as a dataset clusters
    it (:func:`nucseg.acquisitions.cluster_acquisitions` over all its images, each image its
    own origin: right for DSB2018 and MoNuSeg, not for frames of one sequence)."""
    origins = {
        image_id: origin_signature(image, labels, detect_category(image))
        for image_id, image, labels in items
    }
    table = pd.DataFrame.from_dict(origins, orient="index").sort_index()
    return cluster_acquisitions(table, name).to_dict()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("resources/models/dsb36gen20"))
    parser.add_argument("--realdata", type=Path, default=Path("resources/realdata"))
    parser.add_argument("--config", type=Path, default=Path("config/dsb2018.yaml"))
    parser.add_argument("--sets", nargs="+", default=["dsb", "monuseg", "ctc", "gbm40"])
    parser.add_argument("--choose-on", nargs="+", default=["dsb", "monuseg"])
    parser.add_argument("--maps", type=Path, help="folder caching each set's maps")
    parser.add_argument("--retune", type=Path, help="write the choice as a thresholds file")
    parser.add_argument(
        "--tune", nargs="+", help="only these fields of the grid (the others: the model's own)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny untrained model (CI)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        model = quick_network()
        normalize, base, split = NormalizeConfig(), PostprocessConfig(), None
        predict, grid, args.sets, args.choose_on = predict_config([]), QUICK_GRID, ["q"], ["q"]
    else:
        model, normalize, base, split = load_model_folder(args.model)
        predict = predict_config([args.model])
        grid = yaml.safe_load(args.config.read_text())["postprocess"]["grid"]
        if args.tune:
            grid = {field: grid[field] for field in args.tune}
    net = network_for(model, predict)
    configs = [base, *grid_configs(base, grid)]  # 0: the model's own
    tables, chosen_on = [], {}
    for name in args.sets:
        start = time.perf_counter()
        if args.quick:
            items = generated_set()["generated"]
        else:
            items = real_sets(args.realdata, split, [name])[name]
        cache = args.maps / f"{args.model.name}-{name}.npz" if args.maps else None
        maps = predicted_maps(net, normalize, predict, items, cache)
        probs = {i: m[0].astype(np.float32) for i, m in maps.items()}
        labels = {i: m[1] for i, m in maps.items()}
        table = score_table(probs, labels, configs, args.threads)
        for image_id, scores in table.items():
            frame = pd.DataFrame({"set": name, "id": image_id, "dsb": scores})
            frame["category"] = maps[image_id][2]
            tables.append(frame.rename_axis("config").reset_index())
        if name in args.choose_on:
            if args.quick:
                acquisitions = acquisitions_of(name, generated_set()["generated"])
            else:
                fmt, folder, *_ = SETS[name]
                source = EvaluationSet(name, fmt, args.realdata / folder)
                acquisitions = acquisitions_of(name, source.images())
            for i, m in maps.items():
                chosen_on[i] = (probs[i], labels[i], m[2], acquisitions[i])
        print(f"{name}: {len(maps)} images, {time.perf_counter() - start:.0f} s", flush=True)
    scores = pd.concat(tables, ignore_index=True)
    scores["group"] = scores.set + "/" + scores.category
    means = scores.groupby(["group", "config"]).dsb.mean().unstack(0)
    result = tuned_thresholds(
        {i: v[0] for i, v in chosen_on.items()},
        {i: v[1] for i, v in chosen_on.items()},
        base,
        grid,
        {i: v[2] for i, v in chosen_on.items()},
        {i: v[3] for i, v in chosen_on.items()},
        args.threads,
        fold=f"{args.model}: the held-out side of its split.tsv in sets {args.choose_on}",
    )
    choice = 1 + configs[1:].index(PostprocessConfig(**result["postprocess"]))
    picks = {"own thresholds": 0}
    picks |= {f"best for {g}": int(means[g].idxmax()) for g in means}
    picks[f"chosen on {'+'.join(args.choose_on)}"] = choice
    report = pd.DataFrame({label: means.loc[k] for label, k in picks.items()}).T.round(4)
    settings = [{f: getattr(configs[k], f) for f in grid} for k in picks.values()]
    report.insert(0, "thresholds", settings)
    with pd.option_context("display.max_colwidth", 200, "display.width", 250):
        print(report.to_string())
    if args.retune:
        args.retune.write_text(json.dumps(result, indent=1) + "\n")
        print(f"thresholds: {args.retune}")


if __name__ == "__main__":
    main()
