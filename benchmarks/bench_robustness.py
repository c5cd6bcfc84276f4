"""Accuracy on real images as other microscopes and users would hand them over: the same
annotated images, transformed, scored as ``nucseg predict`` runs the model.

The hidden test images include kinds that no local set has.  Each transformation below is
one such kind made from real annotated images (labels follow the geometry):

- ``none``: the images as they are (the reference row);
- ``vignette``: uneven illumination, the corners at 40 % of the centre (``1 - 0.3 r²``);
- ``blur``: out of focus, a gaussian of 2 px;
- ``lowlight``: a 16-bit frame of a low-photon camera, the brightest pixel ~30
  photo-electrons above an offset of 100, read noise 2 (:func:`nucseg.synth.nuclei.camera_frame`);
- ``composite``: an RGB overlay of two stains, the nuclei in blue and a diffuse stain around
  them in green (the nuclear channel, dilated and smoothed, at 80 %);
- ``inverted``: an inverted lookup table (dark nuclei on a light background);
- ``half`` / ``double``: the images at half / twice their size (bilinear; labels nearest).

Fluorescence-only transformations (vignette, low light, composite, inverted) skip the H&E
set; ``dsb`` keeps its gray images of the model's held-out side.

    .venv/bin/python benchmarks/bench_robustness.py --model resources/models/dsb36gen20
    .venv/bin/python benchmarks/bench_robustness.py --quick    # seconds: a tiny untrained model
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import ndimage as ndi
from skimage.transform import resize

sys.path.insert(0, str(Path(__file__).parent))
from bench_realdata import (  # noqa: E402
    CPU,
    generated_set,
    load_model_folder,
    quick_network,
    real_sets,
)

from nucseg.evaluation import score_images  # noqa: E402
from nucseg.normalize import NormalizeConfig, nuclei_bright  # noqa: E402
from nucseg.postprocess import PostprocessConfig  # noqa: E402
from nucseg.predict import PredictConfig, network_for  # noqa: E402
from nucseg.segmenter import predict_config  # noqa: E402
from nucseg.synth.nuclei import camera_frame  # noqa: E402

Item = tuple[np.ndarray, np.ndarray]  # (image, labels)


def _like(values: np.ndarray, image: np.ndarray) -> np.ndarray:
    """``values`` rounded and clipped into ``image``'s integer dtype."""
    top = np.iinfo(image.dtype).max
    return np.clip(np.rint(values), 0, top).astype(image.dtype)


def vignette(image, labels, rng) -> Item:
    height, width = image.shape[:2]
    y, x = np.ogrid[:height, :width]
    radius2 = ((y - height / 2) / (height / 2)) ** 2 + ((x - width / 2) / (width / 2)) ** 2
    shading = 1 - 0.3 * radius2
    shading = shading[..., None] if image.ndim == 3 else shading
    return _like(image * shading, image), labels


def blur(image, labels, rng) -> Item:
    sigma = (2, 2, 0) if image.ndim == 3 else 2
    return _like(ndi.gaussian_filter(image.astype(np.float32), sigma), image), labels


def lowlight(image, labels, rng) -> Item:
    brightest = nuclei_bright(image, "fluorescence").max()  # the channel camera_frame records
    per_level = 30 / max(int(brightest), 1)
    frame = camera_frame(image, rng, offset=100, electrons_per_level=per_level, read_noise=2)
    return frame, labels


def composite(image, labels, rng) -> Item:
    nuclei = nuclei_bright(image, "fluorescence")  # what the model reads of one stain
    stain = 0.8 * ndi.gaussian_filter(ndi.grey_dilation(nuclei, size=9), 4)
    overlay = np.stack([np.zeros_like(nuclei), stain, nuclei], axis=-1)
    return np.clip(np.rint(overlay), 0, 255).astype(np.uint8), labels


def inverted(image, labels, rng) -> Item:
    colour = image[..., :3] if image.ndim == 3 else image
    return np.iinfo(colour.dtype).max - colour, labels


def _resized(image, labels, factor: float) -> Item:
    size = (round(image.shape[0] * factor), round(image.shape[1] * factor))
    pixels = resize(image.astype(np.float32), size + image.shape[2:], order=1, preserve_range=True)
    nearest = resize(labels, size, order=0, preserve_range=True, anti_aliasing=False)
    return _like(pixels, image), nearest.astype(labels.dtype)


def half(image, labels, rng) -> Item:
    return _resized(image, labels, 0.5)


def double(image, labels, rng) -> Item:
    return _resized(image, labels, 2.0)


TRANSFORMS: dict[str, Callable] = {
    "none": lambda image, labels, rng: (image, labels),
    "vignette": vignette,
    "blur": blur,
    "lowlight": lowlight,
    "composite": composite,
    "inverted": inverted,
    "half": half,
    "double": double,
}
FLUORESCENCE_ONLY = {"vignette", "lowlight", "composite", "inverted"}
HISTOLOGY_SETS = {"gbm40", "monuseg"}


def is_gray(image: np.ndarray) -> bool:
    colour = image[..., :3] if image.ndim == 3 else image[..., None]
    return bool((colour == colour[..., :1]).all())


def transformed(
    items: Iterator[tuple[str, np.ndarray, np.ndarray]],
    transform: Callable,
    limit: int,
    gray_only: bool,
    seed: int,
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """The first ``limit`` items (gray images only, if asked), transformed (seeded)."""
    rng = np.random.default_rng(seed)
    kept = (item for item in items if not gray_only or is_gray(item[1]))
    for image_id, image, labels in islice(kept, limit):
        yield image_id, *transform(image, labels, rng)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a shipped/exported model folder")
    parser.add_argument("--realdata", type=Path, default=Path("resources/realdata"))
    parser.add_argument("--sets", nargs="+", default=["dsb", "coelho", "ctc", "gbm40"])
    parser.add_argument("--transforms", nargs="+", default=list(TRANSFORMS), choices=TRANSFORMS)
    parser.add_argument("--limit", type=int, default=60, help="images per set, at most")
    parser.add_argument("--out", type=Path, help="per-image table (default: a temporary file)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny untrained model (CI)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        model, normalize, thresholds = quick_network(), NormalizeConfig(), PostprocessConfig()
        predict, split = PredictConfig(), None
    else:
        model, normalize, thresholds, split = load_model_folder(args.model)
        predict = predict_config([args.model])
    network = network_for(model, predict)
    tables = []
    for name in args.transforms:
        sets = generated_set() if args.quick else real_sets(args.realdata, split, args.sets)
        kept = {
            set_name: transformed(
                iter(items), TRANSFORMS[name], args.limit, set_name == "dsb", seed=0
            )
            for set_name, items in sets.items()
            if not (name in FLUORESCENCE_ONLY and set_name in HISTOLOGY_SETS)
        }
        table = score_images(network, normalize, thresholds, kept, predict, CPU)
        table.insert(0, "transform", name)
        tables.append(table)
    results = pd.concat(tables, ignore_index=True)
    summary = results.pivot_table(index="transform", columns="set", values="dsb", aggfunc="mean")
    print(summary.reindex(args.transforms).round(4).to_string())
    categories = results.groupby(["transform", "set"], sort=False).category.agg(
        lambda found: ", ".join(f"{c} {n}" for c, n in found.value_counts().items())
    )
    print("categories detected:")
    print(categories.to_string())
    out = args.out or Path(tempfile.mkstemp(suffix=".tsv")[1])
    results.to_csv(out, sep="\t", index=False)
    print(f"per image: {out}")


if __name__ == "__main__":
    main()
