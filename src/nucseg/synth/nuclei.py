"""Seeded generator of synthetic nuclei images in the Kaggle DSB2018 stage1 on-disk layout.

The generator stands in for the competition data (which cannot be downloaded here), so it
aims at the variety described in ``shared/DATA.md``:

- three kinds of acquisition: ``fluorescence`` (bright nuclei on black, gray stored as RGBA
  with R=G=B and unused alpha, a few tinted), ``brightfield`` (dark nuclei on light
  background) and ``histology`` (H&E via a Beer-Lambert stain model: purple nuclei on pink or
  on white);
- nuclei of varied size (an image-level scale, ~2x between acquisitions), elongation and
  irregular outline (random low-order Fourier radius), textured chromatin, several-fold
  intensity differences, dim nuclei, small bright mitotic ones, clusters of touching nuclei,
  nuclei cut by the image border;
- blur, Poisson/Gaussian noise, uneven illumination.

Ground truth is exact: the instance label image the pixels were rendered from.

Layout written by :func:`write_kaggle_stage1` (same as Kaggle's stage1_train / stage1_test)::

    <root>/<id>/images/<id>.png      # 8-bit RGBA / RGB / L
    <root>/<id>/masks/<mask_id>.png  # one 0/255 mask per nucleus (train only)

and :func:`nucseg.io.kaggle.write_solution_csv` writes Kaggle's stage1_solution form
``ImageId,EncodedPixels,Height,Width`` (one row per nucleus).  :func:`write_monuseg` writes
TCGA/MoNuSeg-like H&E tiles with Aperio XML polygons and :func:`write_ctc` a Cell Tracking
Challenge-like 16-bit sequence with sparse ground truth (see :mod:`nucseg.io.sources`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage as ndi
from skimage.measure import find_contours

from nucseg.io.atomic import atomic_path
from nucseg.io.kaggle import write_solution_csv
from nucseg.synth.noise import smooth_noise

KINDS = ("fluorescence", "brightfield", "histology")

# (height, width) of the real stage1 images, plus odd test shapes; weights ~ real frequencies
# with large images down-weighted to keep the demo fast.
DEFAULT_SHAPES = ((256, 256), (256, 320), (360, 360), (260, 347), (520, 696), (151, 500))
DEFAULT_SHAPE_WEIGHTS = (0.40, 0.18, 0.14, 0.08, 0.10, 0.10)

# Optical densities of haematoxylin and eosin per RGB channel (Ruifrok & Johnston, as in
# scikit-image's rgb_from_hed), normalised.
_HAEMATOXYLIN = np.array([0.65, 0.70, 0.29])
_EOSIN = np.array([0.07, 0.99, 0.11])


@dataclass(frozen=True)
class SynthConfig:
    """What to generate.  Same config and seed give byte-identical files."""

    n_images: int
    seed: int
    kind_weights: tuple[float, float, float] = (0.70, 0.12, 0.18)  # fluo, brightfield, H&E
    shapes: tuple[tuple[int, int], ...] = DEFAULT_SHAPES
    shape_weights: tuple[float, ...] = DEFAULT_SHAPE_WEIGHTS
    radius_range: tuple[float, float] = (6.0, 13.0)  # mean nucleus radius of an image, px


@dataclass
class SynthImage:
    """One generated image with its ground truth."""

    image_id: str
    kind: str
    pixels: np.ndarray  # uint8, H x W x C (C = 4, 3) or H x W
    instance_labels: np.ndarray  # int32, H x W


def hex_id(*parts: object) -> str:
    """A 64-hex id like Kaggle's, derived deterministically from ``parts``."""
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def _nucleus_field(
    rng: np.random.Generator, radius: float, center: tuple[float, float], shape: tuple[int, int]
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Normalised radial coordinate ``f`` (``f < 1`` inside) of one nucleus within its bbox.

    The outline is an ellipse (axis ratio up to ~2) with a random low-order Fourier wobble.
    """
    elongation = 1.0 + rng.gamma(1.5, 0.18)
    angle = rng.uniform(0, np.pi)
    harmonics = np.arange(2, 6)
    amplitudes = rng.normal(0, 0.06, harmonics.size) / harmonics * 2
    phases = rng.uniform(0, 2 * np.pi, harmonics.size)
    reach = radius * np.sqrt(elongation) * 1.4 + 2
    cy, cx = center
    r0, r1 = int(max(cy - reach, 0)), int(min(cy + reach + 1, shape[0]))
    c0, c1 = int(max(cx - reach, 0)), int(min(cx + reach + 1, shape[1]))
    if r0 >= r1 or c0 >= c1:
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0))
    yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float64)
    dy, dx = yy - cy, xx - cx
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / np.sqrt(elongation)
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) * np.sqrt(elongation)
    theta = np.arctan2(v, u)
    wobble = 1 + (
        amplitudes[:, None, None] * np.cos(harmonics[:, None, None] * theta + phases[:, None, None])
    ).sum(0)
    return (slice(r0, r1), slice(c0, c1)), np.hypot(u, v) / (radius * wobble)


def render_instances(
    rng: np.random.Generator, shape: tuple[int, int], mean_radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Place nuclei (isolated, clustered and touching) and return ``(labels, f_field)``.

    ``f_field`` holds each pixel's normalised radial coordinate within its own nucleus (0 at
    the centre, 1 at the outline), used to shade the nucleus.  Overlapping nuclei split the
    shared pixels by the smaller normalised coordinate, which gives straight-ish touching
    boundaries as between real pressed nuclei.
    """
    height, width = shape
    area = height * width
    coverage = rng.uniform(0.08, 0.32)
    n_target = max(1, int(coverage * area / (np.pi * mean_radius**2)))
    cluster_fraction = rng.uniform(0.2, 0.6)
    labels = np.zeros(shape, np.int32)
    best_f = np.full(shape, np.inf)
    centers: list[tuple[float, float, float]] = []
    label = 0
    for _attempt in range(n_target * 4):
        if label >= n_target:
            break
        radius = mean_radius * rng.lognormal(0, 0.22)
        if centers and rng.random() < cluster_fraction:
            # touching neighbour of an existing nucleus
            py, px, pr = centers[rng.integers(len(centers))]
            direction = rng.uniform(0, 2 * np.pi)
            distance = (pr + radius) * rng.uniform(0.75, 0.95)
            cy, cx = py + distance * np.sin(direction), px + distance * np.cos(direction)
        else:
            # allow centres slightly outside so that border nuclei are cut, as in tiles
            cy = rng.uniform(-0.5 * radius, height + 0.5 * radius)
            cx = rng.uniform(-0.5 * radius, width + 0.5 * radius)
        window, f = _nucleus_field(rng, radius, (cy, cx), shape)
        inside = f < 1
        if not inside.any():
            continue
        taken = inside & (labels[window] > 0)
        if taken.sum() > 0.25 * inside.sum():
            continue  # too much overlap: real nuclei press, they do not stack
        label += 1
        claim = inside & (f < best_f[window])
        labels[window][claim] = label
        best_f[window][claim] = f[claim]
        centers.append((cy, cx, radius))
    return _clean_labels(labels), np.where(np.isfinite(best_f), best_f, 1.0)


def _clean_labels(labels: np.ndarray, min_area: int = 12) -> np.ndarray:
    """Keep the largest connected piece of each label, drop tiny ones, renumber 1..N."""
    out = np.zeros_like(labels)
    next_label = 1
    for index, window in enumerate(ndi.find_objects(labels), start=1):
        if window is None:
            continue
        pieces, n_pieces = ndi.label(labels[window] == index)
        if n_pieces == 0:
            continue
        sizes = np.bincount(pieces.ravel())[1:]
        if sizes.max() < min_area:
            continue
        out[window][pieces == (sizes.argmax() + 1)] = next_label
        next_label += 1
    return out


def _nucleus_density(
    rng: np.random.Generator, labels: np.ndarray, f_field: np.ndarray, mean_radius: float
) -> np.ndarray:
    """Per-pixel nucleus 'stain' in [0, ~1.5]: per-nucleus level x edge profile x chromatin."""
    n = int(labels.max())
    level = rng.lognormal(0, 0.45, n + 1)  # several-fold differences between nuclei
    dim = rng.random(n + 1) < 0.08
    level[dim] *= rng.uniform(0.15, 0.35, dim.sum())  # out-of-focus / dim nuclei
    level /= np.percentile(level[1:], 90) if n else 1.0
    level[0] = 0.0
    profile = np.clip(1 - f_field**4, 0, 1) ** 0.35
    chromatin = 1 + 0.22 * smooth_noise(rng, labels.shape, max(0.8, mean_radius / 6))
    chromatin += 0.12 * smooth_noise(rng, labels.shape, 0.7)
    return np.clip(level[labels] * profile * chromatin, 0, None) * (labels > 0)


def _illumination(rng: np.random.Generator, shape: tuple[int, int], strength: float) -> np.ndarray:
    """Smooth multiplicative illumination field around 1 (vignetting and gradients)."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width] / max(shape)
    gy, gx = rng.normal(0, strength, 2)
    field_ = 1 + gy * (yy - yy.mean()) + gx * (xx - xx.mean())
    field_ += strength * 0.25 * smooth_noise(rng, shape, max(shape) / 5)
    return np.clip(field_, 0.5, 1.5)


def _finish(rng: np.random.Generator, image: np.ndarray, blur: float, noise: float) -> np.ndarray:
    """Optical blur, Poisson-like and Gaussian noise, 8-bit quantisation."""
    sigma = (blur, blur, 0) if image.ndim == 3 else blur
    image = ndi.gaussian_filter(image, sigma)
    image = image + rng.normal(0, 1, image.shape) * noise * np.sqrt(np.clip(image, 1, None) / 64)
    image = image + rng.normal(0, noise * 0.3, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def render_image(
    rng: np.random.Generator, kind: str, shape: tuple[int, int], mean_radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Render one image of ``kind``; returns ``(uint8 pixels, int32 instance labels)``."""
    labels, f_field = render_instances(rng, shape, mean_radius)
    density = _nucleus_density(rng, labels, f_field, mean_radius)
    blur = rng.choice([rng.uniform(0.3, 1.0), rng.uniform(1.0, 2.2)], p=[0.75, 0.25])
    light = _illumination(rng, shape, rng.uniform(0.1, 0.6))
    if kind == "fluorescence":
        # mitotic nuclei: a few small very bright ones
        bright = rng.uniform(70, 230)
        background = rng.uniform(2, 25)
        signal = background + bright * density * light
        gray = _finish(rng, signal, blur, rng.uniform(1, 6))
        if rng.random() < 0.8:  # Kaggle stores gray fluorescence as RGBA with R=G=B
            alpha = np.full_like(gray, 255)
            return np.dstack([gray, gray, gray, alpha]), labels
        tint = rng.dirichlet(np.ones(3)) * 1.8
        rgb = np.clip(gray[..., None].astype(np.float64) * np.clip(tint, 0, 1), 0, 255)
        return np.dstack([rgb.astype(np.uint8), np.full_like(gray, 255)]), labels
    if kind == "brightfield":
        background = rng.uniform(170, 235)
        # faint large-scale background absorbance (debris, uneven medium), much wider than nuclei
        absorb = rng.uniform(0.6, 1.4) * density + 0.02 * smooth_noise(rng, shape, 16) * (
            density == 0
        )
        tint = np.array([1.0, 1.0, 1.0]) + rng.normal(0, 0.06, 3)
        rgb = background * light[..., None] * np.exp(-absorb[..., None] * tint)
        return _finish(rng, rgb, blur, rng.uniform(1, 4)), labels
    if kind == "histology":
        h_vec = _HAEMATOXYLIN + rng.normal(0, 0.04, 3)
        e_vec = _EOSIN + rng.normal(0, 0.04, 3)
        white_background = rng.random() < 0.35  # "purple on white" vs "purple on purple"
        tissue = np.clip(0.5 + 0.5 * smooth_noise(rng, shape, rng.uniform(3, 10)), 0, 1)
        eosin = (0.05 if white_background else rng.uniform(0.25, 0.6)) * (0.4 + tissue)
        haem = rng.uniform(0.5, 1.1) * density + 0.06 * tissue
        od = haem[..., None] * np.abs(h_vec) + eosin[..., None] * np.abs(e_vec)
        rgb = rng.uniform(225, 250) * light[..., None] ** 0.3 * np.exp(-od)
        return _finish(rng, rgb, blur * 0.7, rng.uniform(1, 4)), labels
    raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")


def generate(config: SynthConfig, split: str) -> list[SynthImage]:
    """Generate ``config.n_images`` images for ``split`` (e.g. ``'train'`` or ``'test'``)."""
    images = []
    for index in range(config.n_images):
        rng = np.random.default_rng([config.seed, index, sum(map(ord, split))])
        kind = KINDS[
            rng.choice(len(KINDS), p=np.asarray(config.kind_weights) / sum(config.kind_weights))
        ]
        shape = config.shapes[
            rng.choice(
                len(config.shapes), p=np.asarray(config.shape_weights) / sum(config.shape_weights)
            )
        ]
        # larger fields were imaged at higher magnification in DSB: nuclei scale with size
        low, high = config.radius_range
        mean_radius = rng.uniform(low, high) * (1.25 if min(shape) >= 500 else 1.0)
        pixels, labels = render_image(rng, kind, tuple(shape), mean_radius)
        images.append(
            SynthImage(hex_id("nucseg-synth", config.seed, split, index), kind, pixels, labels)
        )
    return images


def _save_png(array: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def write_kaggle_stage1(images: list[SynthImage], root: Path, *, with_masks: bool) -> None:
    """Write images (and per-nucleus 0/255 masks if ``with_masks``) in stage1 layout."""
    root = Path(root)
    for item in images:
        folder = root / item.image_id
        (folder / "images").mkdir(parents=True, exist_ok=True)
        _save_png(item.pixels, folder / "images" / f"{item.image_id}.png")
        if not with_masks:
            continue
        (folder / "masks").mkdir(exist_ok=True)
        for label in range(1, int(item.instance_labels.max()) + 1):
            mask = np.where(item.instance_labels == label, 255, 0).astype(np.uint8)
            _save_png(mask, folder / "masks" / f"{hex_id(item.image_id, 'mask', label)}.png")


def write_demo_sources(
    root: Path,
    *,
    n_train: int,
    n_test: int,
    seed: int,
    shapes: tuple[tuple[int, int], ...] = DEFAULT_SHAPES,
    shape_weights: tuple[float, ...] | None = None,
    n_monuseg_tiles: int = 0,
    n_ctc_frames: int = 0,
) -> None:
    """Write the demo's ``stage1_train/``, ``stage1_test/`` and ``stage1_solution.csv`` under
    ``root``.  ``shapes`` default to the real stage1 sizes; custom shapes are drawn uniformly
    unless ``shape_weights`` are given.  With ``n_monuseg_tiles``/``n_ctc_frames`` it also
    writes ``monuseg/`` (:func:`write_monuseg`, 1000 x 1000 tiles) and
    ``Fluo-N2DH-SYN/`` (:func:`write_ctc`, every third frame annotated)."""
    root = Path(root)
    shapes = tuple(tuple(s) for s in shapes)
    if shape_weights is None:
        shape_weights = DEFAULT_SHAPE_WEIGHTS if shapes == DEFAULT_SHAPES else (1.0,) * len(shapes)
    common = {"seed": seed, "shapes": shapes, "shape_weights": tuple(shape_weights)}
    if n_train:  # 0 when real training images stand in for generated ones
        train = generate(SynthConfig(n_images=n_train, **common), "train")
        write_kaggle_stage1(train, root / "stage1_train", with_masks=True)
    test = generate(SynthConfig(n_images=n_test, **common), "test")
    write_kaggle_stage1(test, root / "stage1_test", with_masks=False)
    write_solution_csv({i.image_id: i.instance_labels for i in test}, root / "stage1_solution.csv")
    if n_monuseg_tiles:
        write_monuseg(root / "monuseg", n_tiles=n_monuseg_tiles, seed=seed + 1)
    if n_ctc_frames:
        write_ctc(root / "Fluo-N2DH-SYN", n_frames=n_ctc_frames, seed=seed + 2)


def _polygons_of(instance_labels: np.ndarray) -> list[np.ndarray]:
    """Outline of each nucleus ``1..N`` as ``K x 2`` (row, column) vertices in image
    coordinates (longest contour, traced within the nucleus's bounding box)."""
    polygons = []
    for label, box in enumerate(ndi.find_objects(instance_labels), start=1):
        if box is None:
            continue
        mask = np.pad(instance_labels[box] == label, 1).astype(float)
        contour = max(find_contours(mask, 0.5), key=len)[:-1]  # closed: drop the repeated point
        polygons.append(contour - 1 + (box[0].start, box[1].start))
    return polygons


def _aperio_xml(polygons: list[np.ndarray]) -> str:
    """Aperio ImageScope XML text with one Region per polygon (X = column, Y = row)."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<Annotations MicronsPerPixel="0.252">']
    lines += ['<Annotation Id="1" Name="" ReadOnly="0" LineColor="65280">', "<Regions>"]
    for number, points in enumerate(polygons, start=1):
        lines.append(f'<Region Id="{number}" Type="0" Zoom="1" Selected="0">')
        lines.append("<Vertices>")
        lines += [f'<Vertex X="{col:.3f}" Y="{row:.3f}" Z="0" />' for row, col in points]
        lines += ["</Vertices>", "</Region>"]
    lines += ["</Regions>", "</Annotation>", "</Annotations>", ""]
    return "\n".join(lines)


def write_monuseg(
    root: Path, *, n_tiles: int, seed: int, shape: tuple[int, int] = (1000, 1000)
) -> None:
    """Write TCGA/MoNuSeg-like H&E tiles: ``Tissue Images/<name>.tif`` (RGB) and
    ``Annotations/<name>.xml`` (Aperio polygons traced from the rendered nuclei)."""
    root = Path(root)
    config = SynthConfig(
        n_images=n_tiles, seed=seed, kind_weights=(0, 0, 1), shapes=(shape,), shape_weights=(1.0,)
    )
    for item in generate(config, "monuseg"):
        name = f"TCGA-{item.image_id[:2].upper()}-{item.image_id[2:6].upper()}-01Z-00-DX1"
        polygons = _polygons_of(item.instance_labels)
        with atomic_path(root / "Tissue Images" / f"{name}.tif") as tmp:
            tifffile.imwrite(tmp, item.pixels, photometric="rgb")
        with atomic_path(root / "Annotations" / f"{name}.xml") as tmp:
            tmp.write_text(_aperio_xml(polygons))


def monochrome(image: np.ndarray) -> np.ndarray:
    """What a monochrome camera sees of an 8-bit image: a gray image as it is; a colour
    image on a light background (transmitted light: brightfield, H&E) as the mean of its
    channels, the light every channel lets through; one on a dark background
    (fluorescence) as its brightest channel, the stain a filter set would pass.  The
    brightest channel of an H&E image hides its nuclei (purple passes blue nearly as the
    white background does): the demo's 4 real H&E test images as 16-bit frames scored
    0.18 read that way, 0.41 as the mean, 0.37 as the RGB originals (dsb36gen20)."""
    if image.ndim == 2:
        return image
    rgb = image[..., :3]
    mean = rgb.mean(axis=2)
    if np.median(mean) > 127.5:
        return np.round(mean).astype(image.dtype)
    return rgb.max(axis=2)


def camera_frame(
    image: np.ndarray,
    rng: np.random.Generator,
    *,
    offset: float = 33_000.0,
    electrons_per_level: float = 4.0,
    read_noise: float = 10.0,
    bits: int = 16,
) -> np.ndarray:
    """An 8-bit image as a monochrome 12/16-bit camera records it: each gray level
    (:func:`monochrome`) is ``electrons_per_level`` photo-electrons with Poisson shot
    noise, on top of the camera's ``offset`` with gaussian ``read_noise``, clipped to
    ``bits``.  The defaults give what real microscopes write and an 8-bit rendering hides:
    background near 33,000 of 65,535, nuclei a few hundred to a thousand counts above it."""
    gray = monochrome(image)
    electrons = rng.poisson(electrons_per_level * gray.astype(np.float64))
    counts = offset + electrons + rng.normal(0.0, read_noise, gray.shape)
    return np.clip(np.round(counts), 0, 2**bits - 1).astype(np.uint16)


def write_ctc(
    root: Path,
    *,
    n_frames: int,
    seed: int,
    annotate_every: int = 3,
    shape: tuple[int, int] = (256, 320),
) -> None:
    """Write a Cell Tracking Challenge-like 2D sequence: 16-bit ``01/tNNN.tif`` frames of a
    12-bit camera (offset 400, 16 electrons per gray level, read noise 8: :func:`camera_frame`)
    and ``01_GT/SEG/man_segNNN.tif`` labels for every ``annotate_every``-th frame only."""
    root = Path(root)
    config = SynthConfig(
        n_images=n_frames, seed=seed, kind_weights=(1, 0, 0), shapes=(shape,), shape_weights=(1.0,)
    )
    rng = np.random.default_rng(seed)
    for frame, item in enumerate(generate(config, "ctc")):
        deep = camera_frame(
            item.pixels, rng, offset=400, electrons_per_level=16, read_noise=8, bits=12
        )
        with atomic_path(root / "01" / f"t{frame:03d}.tif") as tmp:
            tifffile.imwrite(tmp, deep)
        if frame % annotate_every == 0:
            with atomic_path(root / "01_GT" / "SEG" / f"man_seg{frame:03d}.tif") as tmp:
                tifffile.imwrite(tmp, item.instance_labels.astype(np.uint16))
