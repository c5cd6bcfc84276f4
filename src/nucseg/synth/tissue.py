"""Generated H&E-like tissue tiles with class maps, in the layout the tissue task reads
(:mod:`nucseg.io.tissue`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from nucseg.io.atomic import atomic_path
from nucseg.io.tissue import save_class_map
from nucseg.synth.noise import smooth_noise

# Ruifrok & Johnston optical densities of haematoxylin and eosin (R, G, B)
_HAEMATOXYLIN = np.array([0.65, 0.70, 0.29])
_EOSIN = np.array([0.07, 0.99, 0.11])


@dataclass(frozen=True)
class TissueSynthConfig:
    """``n_images`` generated ``size x size`` tiles from ``seed``."""

    n_images: int = 40
    size: int = 512
    seed: int = 11


def synth_tissue(rng: np.random.Generator, size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """One RGBA tile (uint8) and its class map (uint8 0..3).

    Regions from smooth random fields (glass where tissue thins out; stroma, tumour nests
    and necrotic patches inside), then stain amounts per class with texture: wavy eosin
    fibres in stroma, dense dark nuclei in tumour, pale eosin with nuclear debris in
    necrosis; rendered by Beer-Lambert absorption, with blur and sensor noise.
    """
    tissue = smooth_noise(rng, (size, size), 60) > rng.uniform(-1.2, -0.4)
    tumour = smooth_noise(rng, (size, size), 28) + rng.uniform(-0.3, 0.5)
    necrosis = smooth_noise(rng, (size, size), 22) - 1.2 + 0.8 * (tumour > 0.6)
    classes = np.where(tissue, 1, 0).astype(np.uint8)
    classes[tissue & (tumour > 0.4)] = 2
    classes[tissue & (necrosis > 0.3)] = 3
    fibres = ndi.gaussian_filter(rng.standard_normal((size, size)), (1.0, 6.0))
    fibres = ndi.rotate(fibres, rng.uniform(0, 180), reshape=False, mode="wrap")
    nuclei = ndi.gaussian_filter(rng.standard_normal((size, size)), 2.2)
    nuclei = (nuclei > np.percentile(nuclei, 80)).astype(float)
    debris = (ndi.gaussian_filter(rng.standard_normal((size, size)), 1.0) > 1.4).astype(float)
    haematoxylin = np.select(
        [classes == 0, classes == 1, classes == 2, classes == 3],
        [
            0.02,
            0.12 + 0.25 * (nuclei * (rng.uniform(size=(size, size)) < 0.15)),
            0.25 + 0.9 * nuclei,
            0.1 + 0.5 * debris,
        ],
    )
    eosin = np.select(
        [classes == 0, classes == 1, classes == 2, classes == 3],
        [0.02, 0.55 + 0.25 * fibres, 0.35, 0.3 + 0.05 * fibres],
    )
    strength = rng.uniform(0.8, 1.25)
    density = strength * (haematoxylin[..., None] * _HAEMATOXYLIN + eosin[..., None] * _EOSIN)
    rgb = 255 * np.exp(-ndi.gaussian_filter(density, (0.8, 0.8, 0)))
    rgb += rng.normal(0, 3, rgb.shape)
    alpha = np.full((size, size, 1), 255.0)
    return np.clip(np.concatenate([rgb, alpha], 2), 0, 255).astype(np.uint8), classes


def write_tissue_dataset(root: Path | str, config: TissueSynthConfig = TissueSynthConfig()) -> None:
    """``images/tile_NNN.png`` (RGBA) and ``masks/tile_NNN.png`` (P) under ``root``."""
    root = Path(root)
    rng = np.random.default_rng(config.seed)
    for number in range(config.n_images):
        rgba, classes = synth_tissue(rng, config.size)
        (root / "images").mkdir(parents=True, exist_ok=True)
        with atomic_path(root / "images" / f"tile_{number:03d}.png") as tmp:
            Image.fromarray(rgba, mode="RGBA").save(tmp)
        save_class_map(classes, root / "masks" / f"tile_{number:03d}.png")
