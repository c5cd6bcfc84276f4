"""Inference and post-processing benchmarks, and the demo's accuracy ablations.

``speed``: inference images/s of UNet-16/4 at 256x256 (batch 8, no TTA) on this machine's
threads, its FLOP rate as a fraction of (a) a large FP32 matrix product measured in the same
run and (b) the nominal peak (cores x GHz x 64 FLOP/cycle for two AVX-512 FMA units); and
post-processing milliseconds per 256x256 image for 1-head and 3-head maps.
``postprocess``: instance separation ms per image against the earlier implementation
(scikit-image's ``h_maxima``, scipy's ``binary_fill_holes`` and distance transform),
identical labels checked.
``normalize``: ms per image of :func:`nucseg.normalize.normalize_image` against the same
with per-pixel channel statistics as reductions over the ``H x W x 3`` channel axis (as
before), on real images (``--images``) as they are and as 16-bit camera frames, identical
categories and outputs checked.
``tiles``: seconds of a model folder's own prediction settings on large real images
(``--images``, e.g. Coelho's 1349 x 1030 frames) with tiles sized to the image against
square ``--tile`` tiles (as before) and the whole image in one pass, maps compared.
``profile``: where the time of a model folder's prediction goes (``nucseg.Segmenter`` with
its own settings on ``--count`` images of ``--images``, one pass under ``cProfile`` after
a warm-up): seconds in the network passes, instance separation, normalisation, resizing,
the scale choice and the dim-nuclei gate and rescue, and everything else.
``demo``: after ``snakemake results/submission.csv``, the test DSB score of every model and
ensemble with and without TTA, with the config's and with the tuned thresholds.

    .venv/bin/python benchmarks/bench_predict.py speed
    .venv/bin/python benchmarks/bench_predict.py speed --quick    # seconds: tiny sizes (CI)
    .venv/bin/python benchmarks/bench_predict.py postprocess --model resources/models/dsb36gen20 \
        --images resources/dsb2018_slice/stage1_test
    .venv/bin/python benchmarks/bench_predict.py postprocess --quick    # generated maps (CI)
    .venv/bin/python benchmarks/bench_predict.py normalize \
        --images resources/dsb2018_slice/stage1_test
    .venv/bin/python benchmarks/bench_predict.py tiles --model resources/models/dsb36gen20 \
        --images resources/realdata/coelho2009_gnf --count 6
    .venv/bin/python benchmarks/bench_predict.py profile --model resources/models/dsb36gen20 \
        --images resources/dsb2018_slice/stage1_test --count 16
    .venv/bin/python benchmarks/bench_predict.py demo
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from scipy import ndimage as ndi
from timing import best_of, replaced

from nucseg.checkpoints import load_model
from nucseg.datasets import load_normalized, read_manifest
from nucseg.ensemble import weighted_mean
from nucseg.inference import image_files
from nucseg.io.kaggle import read_solutions
from nucseg.metrics import dsb_score
from nucseg.models import ModelConfig, build_model
from nucseg.postprocess import PostprocessConfig, instances_from_probability, read_thresholds
from nucseg.predict import PredictConfig, predict_probability
from nucseg.synth.nuclei import SynthConfig, generate
from nucseg.targets import compute_targets

#: Annotation files beside the images in the real sets' folders (Coelho's ``*_label.tif``).
ANNOTATION_SUFFIXES = ("_label", "_labels", "_mask", "_masks")


def picture_files(folder: Path) -> list[Path]:
    """The image files of ``folder`` as ``nucseg predict`` lists them, less the annotation
    files some real sets keep beside their images."""
    return [f for f in image_files([folder]) if not f.stem.endswith(ANNOTATION_SUFFIXES)]


def conv_flops(model: torch.nn.Module, shape: tuple[int, ...]) -> float:
    """FLOPs (2 x multiply-adds) of the convolutions of one forward pass."""
    total = 0.0

    def count(module, inputs, output):
        nonlocal total
        kernel = module.weight.shape
        if isinstance(module, torch.nn.ConvTranspose2d):
            total += 2 * inputs[0].numel() * kernel[1] * kernel[2] * kernel[3]
        else:
            total += 2 * output.numel() * kernel[1] * kernel[2] * kernel[3]

    hooks = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)
    ]
    with torch.no_grad():
        model(torch.zeros(shape))
    for hook in hooks:
        hook.remove()
    return total


def speed(threads: int, quick: bool = False) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    size, n_maps = (64, 2) if quick else (256, 12)
    model = build_model(ModelConfig(base_width=4, depth=2) if quick else ModelConfig()).eval()
    batch = torch.rand(8, 1, size, size)
    flops = conv_flops(model, (1, 1, size, size))
    with torch.inference_mode():
        model(batch)
        seconds = best_of(lambda: model(batch), repeats=3)
    side = 512 if quick else 4096
    a = torch.rand(side, side)
    matmul = best_of(lambda: a @ a, repeats=3)
    matmul_rate = 2 * side**3 / matmul
    ghz = (
        float(
            next(line for line in open("/proc/cpuinfo") if line.startswith("cpu MHz")).split(":")[1]
        )
        / 1e3
    )
    nominal = threads * ghz * 1e9 * 64
    rate = 8 * flops / seconds
    name = f"UNet-{model.config.base_width}/{model.config.depth}"
    print(f"{name} inference, batch 8 at {size}x{size}, {threads} threads: {8 / seconds:.1f} img/s")
    print(
        f"  {flops / 1e9:.2f} GFLOP per image -> {rate / 1e9:.1f} GFLOP/s = "
        f"{100 * rate / matmul_rate:.0f} % of a {side}^2 FP32 matmul ({matmul_rate / 1e9:.0f} "
        f"GFLOP/s), {100 * rate / nominal:.0f} % of the nominal peak ({nominal / 1e9:.0f})"
    )
    images = generate(
        SynthConfig(n_images=n_maps, seed=5, shapes=((size, size),), shape_weights=(1.0,)), "p"
    )
    for heads in (1, 3):
        maps = []
        for image in images:
            targets = compute_targets(image.instance_labels)[[0, 1, 2][:heads]]
            maps.append(np.clip(ndi.gaussian_filter(targets, (0, 1.5, 1.5)), 0, 1))
        per_image = best_of(
            lambda maps=maps: [instances_from_probability(m) for m in maps], repeats=3
        )
        print(
            f"post-processing, {heads}-head maps, {size}x{size}: "
            f"{1e3 * per_image / len(maps):.1f} "
            "ms per image"
        )


def postprocess_speed(model_dir: Path | None, images: Path | None, quick: bool) -> None:
    """ms per image of instance separation as it is against the same code with
    scikit-image's h_maxima, scipy's binary_fill_holes and scipy's distance transform (as
    before), on the same maps, checking that the labels are identical."""
    from skimage.morphology import h_maxima as skimage_h_maxima

    import nucseg.postprocess as post
    from nucseg.checkpoints import checkpoint_normalization, network_of, read_checkpoint
    from nucseg.io.images import read_image
    from nucseg.normalize import normalize_image

    if model_dir is None:
        generated = generate(
            SynthConfig(
                n_images=2 if quick else 12, seed=5, shapes=((256, 256),), shape_weights=(1.0,)
            ),
            "p",
        )
        maps = [
            np.clip(
                ndi.gaussian_filter(compute_targets(i.instance_labels)[:3], (0, 1.5, 1.5)), 0, 1
            )
            for i in generated
        ]
        thresholds = PostprocessConfig()
    else:
        cpu = torch.device("cpu")
        payload = read_checkpoint(model_dir / "model.pt")
        model = network_of(payload, model_dir / "model.pt", cpu)
        normalize = checkpoint_normalization(payload, model_dir)
        thresholds = read_thresholds(model_dir / "thresholds.json")
        maps = [
            predict_probability(model, normalize_image(read_image(f), normalize)[0], cpu)
            for f in picture_files(images)
        ]
    pixels = sum(m.shape[-1] * m.shape[-2] for m in maps)
    ours = best_of(lambda: [instances_from_probability(m, thresholds) for m in maps], 3)
    new_labels = [instances_from_probability(m, thresholds) for m in maps]
    with replaced(
        post,
        h_maxima=skimage_h_maxima,
        fill_holes=ndi.binary_fill_holes,
        distance_to_background=ndi.distance_transform_edt,
    ):
        before = best_of(lambda: [instances_from_probability(m, thresholds) for m in maps], 3)
        old_labels = [instances_from_probability(m, thresholds) for m in maps]
    same = all(np.array_equal(a, b) for a, b in zip(new_labels, old_labels, strict=True))
    per = 256 * 256 / (pixels / len(maps))  # scale to a 256x256 image
    print(
        f"instance separation, {len(maps)} images ({pixels / len(maps) / 1e3:.0f} k pixels on "
        f"average): {1e3 * ours / len(maps):.1f} ms per image ({1e3 * ours / len(maps) * per:.1f}"
        f" ms per 256x256) vs {1e3 * before / len(maps):.1f} ms with scikit-image's h_maxima, "
        f"scipy's fill_holes and distance transform (x{before / ours:.2f}); "
        f"identical labels: {same}"
    )
    if not same:
        raise SystemExit("the two implementations disagree")


def channel_axis_category(image: np.ndarray) -> str:
    """:func:`nucseg.normalize.detect_category` as it was: statistics over the channel axis
    of the replicated ``H x W x 3`` image (the baseline of ``normalize``)."""
    from nucseg.normalize import BRIGHT_TAIL_POSITION, colour_channels, intensity_range

    rgb = colour_channels(image).astype(np.float32)
    black, white = intensity_range(image)
    chroma = (rgb.max(axis=2) - rgb.min(axis=2)) * np.float32(255.0 / (white - black))
    if np.median(chroma) >= 20:
        return "histology"
    darkest, median, brightest = np.percentile(rgb.mean(axis=2), [0.1, 50, 99.9])
    position = (median - darkest) / (brightest - darkest) if brightest > darkest else 0.0
    if position < BRIGHT_TAIL_POSITION:
        return "fluorescence"
    coloured = np.percentile(chroma, 75) > 20 or np.percentile(chroma, 99) > 35
    return "histology" if coloured else "brightfield"


def channel_axis_bright(image: np.ndarray, category: str) -> np.ndarray:
    """:func:`nucseg.normalize.nuclei_bright` as it was (the baseline of ``normalize``)."""
    from skimage.color import rgb2hed

    from nucseg.normalize import colour_channels, intensity_range, unit_rgb

    if category == "fluorescence":
        return colour_channels(image).max(axis=2).astype(np.float32)
    if category == "brightfield":
        _black, white = intensity_range(image)
        return np.float32(white) - colour_channels(image).mean(axis=2, dtype=np.float32)
    return rgb2hed(unit_rgb(image))[..., 0].astype(np.float32)


def normalize_speed(images: Path, quick: bool) -> None:
    """ms per image of normalisation as it is against channel-axis statistics (see the
    module docstring), on the same images, checking identical categories and outputs."""
    import nucseg.normalize as norm
    from nucseg.io.images import read_image
    from nucseg.synth.nuclei import camera_frame

    files = picture_files(images)[: 4 if quick else None]
    originals = [read_image(f) for f in files]
    frames = [camera_frame(image, np.random.default_rng(0)) for image in originals]
    inputs = originals + frames
    ours = best_of(lambda: [norm.normalize_image(i) for i in inputs], 3)
    new = [norm.normalize_image(i) for i in inputs]
    with replaced(norm, detect_category=channel_axis_category, nuclei_bright=channel_axis_bright):
        before = best_of(lambda: [norm.normalize_image(i) for i in inputs], 3)
        old = [norm.normalize_image(i) for i in inputs]
    same = all(a[1] == b[1] and np.array_equal(a[0], b[0]) for a, b in zip(new, old, strict=True))
    print(
        f"normalisation, {len(originals)} images and their 16-bit camera frames: "
        f"{1e3 * ours / len(inputs):.1f} ms per image vs {1e3 * before / len(inputs):.1f} ms "
        f"with channel-axis statistics (x{before / ours:.2f}); identical: {same}"
    )
    if not same:
        raise SystemExit("the two implementations disagree")


def tiles_speed(model_dir: Path | None, images: Path | None, count: int, tile: int) -> None:
    """Seconds of prediction with tiles sized to the image (:func:`nucseg.predict.tile_length`)
    against square ``tile`` tiles (as before) and the whole image; maps compared."""
    from dataclasses import replace

    import nucseg.predict as pred
    from nucseg.io.images import read_image
    from nucseg.models import ModelConfig, build_model
    from nucseg.normalize import normalize_image
    from nucseg.segmenter import predict_config

    cpu = torch.device("cpu")
    if model_dir is None:  # quick: a tiny untrained network on a generated image
        torch.manual_seed(0)
        model = build_model(ModelConfig(base_width=4, depth=2)).eval()
        pixels = [np.random.default_rng(0).random((1, 200, 330), dtype=np.float32)]
        config, tile = pred.PredictConfig(tile=128, tile_margin=16), 128
    else:
        config = replace(predict_config([model_dir]), tile=tile)
        threads = torch.get_num_threads()  # as main set it
        model, normalize, _, config = pred.load_for_prediction(
            model_dir / "model.pt", config, threads
        )
        pixels = [
            normalize_image(read_image(f), normalize)[0] for f in picture_files(images)[:count]
        ]

    def timed(settings):  # (maps, seconds) of one pass over the images
        begin = time.perf_counter()
        maps = [pred.predict_probability(model, p, cpu, settings) for p in pixels]
        return maps, time.perf_counter() - begin

    whole_image = replace(config, tile=10**5)
    timed(whole_image)  # warm-up: oneDNN's kernels for these sizes
    whole, seconds_whole = timed(whole_image)
    sized, seconds_sized = timed(config)

    def square_tiles(total, tile, overlap, multiple):  # tiles as before: tile x tile
        return min(total, tile)

    with replaced(pred, tile_length=square_tiles):
        square, seconds_square = timed(config)
    differ = max(
        np.abs(a - b).max() for m in (sized, square) for a, b in zip(m, whole, strict=True)
    )
    print(
        f"{len(pixels)} images of {pixels[0].shape[-1]} x {pixels[0].shape[-2]}, tile {tile}: "
        f"square tiles {seconds_square:.1f} s, tiles sized to the image {seconds_sized:.1f} s "
        f"(x{seconds_square / seconds_sized:.2f}), the whole image {seconds_whole:.1f} s; "
        f"maps differ from the whole image's by at most {differ:.1e}"
    )


#: :func:`profile_prediction`'s parts: the functions whose cumulative time each one is
#: (none calls another of them).
PROFILED_PARTS = {
    "network passes (views, flips, tiles)": ["_predict_native"],
    "instance separation": ["instances_from_probability"],
    "normalisation": ["normalize_image"],
    "resizing": ["resize_maps"],
    "scale choice and polarity (map statistics)": ["map_confidence", "typical_objects"],
    "dim-nuclei gate and rescue": ["has_dim_candidates", "rescue_dim_nuclei"],
}


def profile_prediction(model_dir: Path | None, images: Path | None, count: int) -> None:
    """Seconds per part of :meth:`nucseg.Segmenter.segment` over real images, and the share
    of the network passes."""
    import cProfile
    import pstats

    from nucseg import Segmenter
    from nucseg.io.images import read_image
    from nucseg.normalize import NormalizeConfig

    if model_dir is None:  # quick: a tiny untrained network, generated images
        torch.manual_seed(0)
        model = build_model(ModelConfig(base_width=4, depth=2)).eval()
        predict = PredictConfig(views=(0, 5), scales=(1.0, 0.5), dim_gamma=0.5)
        segmenter = Segmenter(
            [model], NormalizeConfig(), PostprocessConfig(), predict, torch.device("cpu")
        )
        config = SynthConfig(n_images=3, seed=2, shapes=((128, 128),), shape_weights=(1.0,))
        pictures = [item.pixels for item in generate(config, "f")]
    else:
        segmenter = Segmenter.from_folder(model_dir)
        pictures = [read_image(f) for f in picture_files(images)[:count]]
    segmenter.segment(pictures[0])  # warm-up: oneDNN's kernels
    profiler = cProfile.Profile()
    begin = time.perf_counter()
    profiler.enable()
    for picture in pictures:
        segmenter.segment(picture)
    profiler.disable()
    total = time.perf_counter() - begin
    cumulative = {}  # function name -> cumulative seconds
    for (_, _, name), (_, _, _, seconds, _) in pstats.Stats(profiler).stats.items():
        cumulative[name] = cumulative.get(name, 0.0) + seconds
    rows = {
        part: sum(cumulative.get(f, 0.0) for f in names) for part, names in PROFILED_PARTS.items()
    }
    rows["everything else"] = total - sum(rows.values())
    table = pd.DataFrame({"seconds": rows}).assign(share=lambda t: t.seconds / total)
    print(
        f"{len(pictures)} images, {total:.2f} s under cProfile ({total / len(pictures):.3f} s each)"
    )
    print(table.round(3).to_string())


def demo(root: Path) -> None:
    config = yaml.safe_load((root / "config.yaml").read_text())
    manifest = read_manifest(root / "results/test/manifest.tsv")
    ids = manifest["id"].tolist()
    images = load_normalized(root / "results/test/normalized", ids)
    solution = config["solution"]
    paths = solution.values() if isinstance(solution, dict) else [solution]
    truth = read_solutions([root / p for p in paths])
    entries = {m: {"models": [m]} for m in config["models"]} | config["ensembles"]
    cpu = torch.device("cpu")
    views = tuple(config["predict"]["tta_views"])
    members = sorted({m for spec in entries.values() for m in spec["models"]})
    maps = {}
    for member in members:
        name, _, which = member.partition(".")
        model = load_model(root / f"results/models/{name}/{which or 'model'}.pt", cpu)
        for tta in (True, False):
            predict = PredictConfig(views=views if tta else (0,))
            maps[member, tta] = {
                i: predict_probability(model, images[i], cpu, predict) for i in ids
            }
    default = PostprocessConfig.from_config(config["postprocess"])
    rows = []
    for name, spec in entries.items():
        tuned = read_thresholds(root / f"results/thresholds/{name}.json")
        for tta in (True, False):
            vote = spec.get("method", "mean") == "vote"
            member_maps = [maps[m, tta] for m in spec["models"]]
            mean = weighted_mean(member_maps, spec.get("weights"), vote)
            for label, post in (("config", default), ("tuned", tuned)):
                score = np.mean(
                    [dsb_score(truth[i], instances_from_probability(mean[i], post)) for i in ids]
                )
                rows.append(
                    {
                        "entry": name,
                        "tta": "8 views" if tta else "none",
                        "thresholds": label,
                        "test_dsb": round(float(score), 4),
                    }
                )
    table = pd.DataFrame(rows).pivot_table(
        index="entry", columns=["tta", "thresholds"], values="test_dsb"
    )
    print(table.to_string())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "what", choices=["speed", "postprocess", "normalize", "tiles", "profile", "demo"]
    )
    parser.add_argument("--count", type=int, default=6, help="tiles, profile: images to predict")
    parser.add_argument("--tile", type=int, default=1024, help="tiles: the tile size")
    parser.add_argument("--model", type=Path, help="postprocess, tiles, profile: a model folder")
    parser.add_argument(
        "--images", type=Path, help="postprocess, normalize, tiles, profile: a folder"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--quick", action="store_true", help="speed at tiny sizes (CI)")
    args = parser.parse_args()
    if args.what == "speed":
        speed(args.threads, args.quick)
    elif args.what == "normalize":
        demo_test = Path(__file__).resolve().parents[1] / "resources/dsb2018_slice/stage1_test"
        normalize_speed(args.images or demo_test, args.quick)
    elif args.what == "postprocess":
        torch.set_num_threads(args.threads)
        postprocess_speed(args.model, args.images, args.quick)
    elif args.what == "tiles":
        torch.set_num_threads(args.threads)
        tiles_speed(None if args.quick else args.model, args.images, args.count, args.tile)
    elif args.what == "profile":
        torch.set_num_threads(args.threads)
        profile_prediction(None if args.quick else args.model, args.images, args.count)
    else:
        torch.set_num_threads(args.threads)
        demo(args.root)


if __name__ == "__main__":
    main()
