"""Generated B-mode ultrasound with nerve masks, in the Kaggle 2016 layout the nerve task
reads (:mod:`nucseg.nerve`): ``train/<subject>_<n>.tif`` + ``_mask.tif``, ``test/<n>.tif``
and the test masks as ``test_solution.csv``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from nucseg.io.images import write_tiff
from nucseg.nerve import IMAGE_SHAPE, write_nerve_submission
from nucseg.synth.noise import smooth_noise


@dataclass(frozen=True)
class NerveSynthConfig:
    """Generated ultrasound: ``subjects`` x ``images_per_subject`` training images and
    ``n_test`` test images of other subjects; a nerve in a fraction ``presence`` of them."""

    subjects: int = 10
    images_per_subject: int = 12
    n_test: int = 30
    presence: float = 0.45
    seed: int = 7
    shape: tuple[int, int] = IMAGE_SHAPE


def _ellipse(shape, center, axes, angle, wobble) -> np.ndarray:
    """Boolean ellipse with a smoothly wobbling outline (``wobble``: relative radius noise)."""
    rows, cols = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    dy, dx = rows - center[0], cols - center[1]
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = (dx * cos + dy * sin) / axes[0], (-dx * sin + dy * cos) / axes[1]
    theta = np.arctan2(v, u)
    radius = 1 + wobble[0] * np.sin(2 * theta + wobble[1]) + wobble[2] * np.sin(3 * theta)
    return np.hypot(u, v) <= radius


def synth_ultrasound(
    rng: np.random.Generator, anatomy: dict, present: bool, shape=IMAGE_SHAPE
) -> tuple[np.ndarray, np.ndarray]:
    """One B-mode-like image (uint8) and its nerve mask (uint8 0/255).

    Tissue echogenicity in layers (skin, fat, muscle with fibres) and smooth variation,
    multiplied by speckle (the magnitude of laterally-correlated complex noise: Rayleigh),
    attenuated with depth and log-compressed. A nerve is an elongated, hypoechoic oval with a
    bright rim and bright fascicle walls; round dark vessels appear with or without one.
    """
    height, width = shape
    rows = np.arange(height, dtype=np.float32)[:, None] / height
    cols = np.arange(width, dtype=np.float32)[None, :] / width
    echo = np.full(shape, 0.55, np.float32)
    for depth, strength in anatomy["layers"]:  # bright interfaces between tissue layers
        boundary = depth + 0.03 * np.sin(2 * np.pi * (cols * 1.3 + rng.uniform()))
        echo += strength * np.exp(-(((rows - boundary) / 0.012) ** 2))
    fibres = ndi.gaussian_filter(rng.standard_normal(shape), (1.0, 9.0))
    echo += 0.25 * (rows > anatomy["muscle"]) * fibres / (fibres.std() + 1e-9)
    echo += 0.15 * smooth_noise(rng, shape, 40)
    mask = np.zeros(shape, bool)
    for _ in range(rng.integers(0, 3)):  # vessels: anechoic circles
        center = (rng.uniform(0.3, 0.9) * height, rng.uniform(0.1, 0.9) * width)
        radius = rng.uniform(10, 22)
        vessel = _ellipse(shape, center, (radius, radius * rng.uniform(0.8, 1.0)), 0, (0, 0, 0))
        echo = np.where(vessel, 0.08, echo)
    if present:
        center = np.asarray(anatomy["nerve_center"]) + rng.normal(0, 12, 2)
        axes = np.asarray(anatomy["nerve_axes"]) * rng.uniform(0.85, 1.15, 2)
        angle = anatomy["nerve_angle"] + rng.normal(0, 0.1)
        wobble = (rng.uniform(0, 0.08), rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.05))
        mask = _ellipse(shape, center, axes, angle, wobble)
        rim = mask & ~ndi.binary_erosion(mask, iterations=4)
        fascicles = ndi.gaussian_filter(rng.standard_normal(shape), 2.5) > 0.35
        echo = np.where(mask, 0.22 + 0.35 * fascicles, echo)
        echo = np.where(rim, 1.15, echo)
    echo = np.clip(echo, 0.02, None)
    speckle = ndi.gaussian_filter(
        rng.standard_normal(shape), (0.8, 2.2)
    ) + 1j * ndi.gaussian_filter(rng.standard_normal(shape), (0.8, 2.2))
    intensity = echo * np.abs(speckle) * np.exp(-1.2 * rows) * anatomy["gain"]
    image = np.log1p(30 * intensity) / np.log1p(30 * 2.5)
    image = ndi.gaussian_filter(image, 0.6)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8), mask.astype(np.uint8) * 255


def _anatomy(rng: np.random.Generator, shape) -> dict:
    """What stays the same across one subject's images."""
    height, width = shape
    return {
        "layers": [(rng.uniform(0.05, 0.12), 0.6), (rng.uniform(0.2, 0.32), 0.45)],
        "muscle": rng.uniform(0.3, 0.45),
        "nerve_center": (rng.uniform(0.35, 0.65) * height, rng.uniform(0.3, 0.7) * width),
        "nerve_axes": (rng.uniform(40, 70), rng.uniform(18, 30)),
        "nerve_angle": rng.uniform(-0.35, 0.35),
        "gain": rng.uniform(0.8, 1.2),
    }


def write_nerve_dataset(root: Path | str, config: NerveSynthConfig = NerveSynthConfig()) -> None:
    """Write ``train/``, ``test/`` and ``test_solution.csv`` (``img,pixels``: the test
    masks, which the real competition kept secret) under ``root``."""
    root = Path(root)
    rng = np.random.default_rng(config.seed)
    for subject in range(1, config.subjects + 1):
        anatomy = _anatomy(rng, config.shape)
        for number in range(1, config.images_per_subject + 1):
            image, mask = synth_ultrasound(
                rng, anatomy, rng.uniform() < config.presence, config.shape
            )
            write_tiff(image, root / "train" / f"{subject}_{number}.tif")
            write_tiff(mask, root / "train" / f"{subject}_{number}_mask.tif")
    solution = {}
    for number in range(1, config.n_test + 1):
        if (number - 1) % 6 == 0:  # test subjects: new anatomies, six images each
            anatomy = _anatomy(rng, config.shape)
        image, mask = synth_ultrasound(rng, anatomy, rng.uniform() < config.presence, config.shape)
        write_tiff(image, root / "test" / f"{number}.tif")
        solution[number] = mask > 0
    write_nerve_submission(solution, root / "test_solution.csv")
