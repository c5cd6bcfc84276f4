"""Image categories and normalisation to "nuclei bright on dark" float channels.

Every image, whatever its modality, becomes a float32 ``C x H x W`` array in [0, 1]
(channels first).  With the default method (``auto``, ``C = 1``) nuclei are bright:
fluorescence keeps its intensity (max over channels, so tinted images work), brightfield is
inverted, and H&E histology is reduced to its haematoxylin density by colour deconvolution
(scikit-image ``rgb2hed``).  ``lab`` uses the CIELAB lightness (``C = 1``); ``rgb`` keeps the
three colour channels (``C = 3``), each inverted unless fluorescence so nuclei stay bright;
``auto+rgb`` stacks ``auto``'s channel and ``rgb``'s three (``C = 4``; a network trained on
``auto`` can grow into it, see :func:`nucseg.train.load_initial_weights`).
Then a robust per-image percentile scaling maps the ``low``-th percentile to 0 and the
``high``-th to 1, clipping outside (one pair of percentiles over the colour channels, so
colour ratios survive; ``auto+rgb`` scales its first channel on its own).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.color import rgb2hed, rgb2lab
from skimage.exposure import equalize_adapthist

from nucseg.io.images import to_rgb8

CATEGORIES = ("fluorescence", "brightfield", "histology")


METHODS = ("auto", "lab", "rgb", "auto+rgb")


@dataclass(frozen=True)
class NormalizeConfig:
    """Normalisation settings (config ``normalize:``).

    ``low``/``high``: percentiles mapped to 0 and 1.  ``method``: ``auto`` converts per
    category (see module docstring); ``lab`` uses the CIELAB lightness for every image,
    inverted unless fluorescence; ``rgb`` keeps colour (inverted unless fluorescence);
    ``auto+rgb`` is ``auto``'s channel followed by ``rgb``'s three.  ``clahe``:
    contrast-limited adaptive histogram equalisation after scaling (scikit-image
    ``equalize_adapthist``).
    """

    low: float = 1.0
    high: float = 99.8
    method: str = "auto"
    clahe: bool = False

    def describe(self, category: str) -> str:
        """What is done to an image of ``category``, as recorded in the dataset manifest,
        e.g. ``haematoxylin p1-99.8`` or ``rgb-inverted p1-99.8 clahe``."""
        auto = {
            "fluorescence": "max-channel",
            "brightfield": "gray-inverted",
            "histology": "haematoxylin",
        }[category]
        if self.method == "auto":
            conversion = auto
        else:
            colour = self.method.removeprefix("auto+")
            conversion = colour if category == "fluorescence" else f"{colour}-inverted"
            if self.method.startswith("auto+"):
                conversion = f"{auto}+{conversion}"
        text = f"{conversion} p{self.low:g}-{self.high:g}"
        return f"{text} clahe" if self.clahe else text


def detect_category(image: np.ndarray) -> str:
    """Guess the acquisition kind from colour statistics of an RGB(A)/gray image.

    Dark images (median brightness below 100 of 255) whose typical pixel is gray (median
    chroma, max - min channel, below 20) are fluorescence: gray or tinted nuclei on a black
    background; a dark image coloured throughout is densely stained H&E (one of the 13
    MoNuSeg tiles has median brightness 98 and median chroma 54; every DSB2018 fluorescence
    image has median chroma 0).  Light images with a colourful quarter of pixels (75th
    percentile of chroma above 20) or strongly coloured nuclei (99th percentile above 35:
    pale "purple on white" H&E) are histology; other light images are brightfield (gray-ish:
    on 300 generated images their 99th percentile of chroma stays below 28, H&E's above 41).
    """
    rgb = to_rgb8(image).astype(np.float32)
    brightness = rgb.mean(axis=2)
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    if np.median(brightness) < 100:
        return "fluorescence" if np.median(chroma) < 20 else "histology"
    coloured = np.percentile(chroma, 75) > 20 or np.percentile(chroma, 99) > 35
    return "histology" if coloured else "brightfield"


def nuclei_bright(image: np.ndarray, category: str) -> np.ndarray:
    """Convert to one float channel where nuclei are bright (not yet rescaled)."""
    rgb = to_rgb8(image)
    if category == "fluorescence":
        return rgb.max(axis=2).astype(np.float32)
    if category == "brightfield":
        return 255.0 - rgb.mean(axis=2, dtype=np.float32)
    if category == "histology":
        return rgb2hed(rgb)[..., 0].astype(np.float32)
    raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")


def percentile_scale(
    channels: np.ndarray, config: NormalizeConfig = NormalizeConfig()
) -> np.ndarray:
    """Map the low/high percentiles (over all values) to 0/1 and clip; a flat image becomes
    all zeros."""
    low, high = np.percentile(channels, [config.low, config.high])
    if high - low < 1e-6:
        return np.zeros(channels.shape, np.float32)
    return np.clip((channels - low) / (high - low), 0, 1).astype(np.float32)


def normalize_image(
    image: np.ndarray, config: NormalizeConfig = NormalizeConfig()
) -> tuple[np.ndarray, str]:
    """Full normalisation: ``(float32 C x H x W in [0, 1] with bright nuclei, category)``."""
    category = detect_category(image)
    if config.method == "auto":
        scaled = percentile_scale(nuclei_bright(image, category)[None], config)
    elif config.method == "lab":
        lightness = rgb2lab(to_rgb8(image))[..., 0].astype(np.float32)
        lightness = lightness if category == "fluorescence" else 100.0 - lightness
        scaled = percentile_scale(lightness[None], config)
    elif config.method in ("rgb", "auto+rgb"):
        rgb = np.moveaxis(to_rgb8(image), -1, 0).astype(np.float32)
        scaled = percentile_scale(rgb if category == "fluorescence" else 255.0 - rgb, config)
        if config.method == "auto+rgb":
            first = percentile_scale(nuclei_bright(image, category)[None], config)
            scaled = np.concatenate([first, scaled])
    else:
        raise ValueError(f"normalize.method must be one of {METHODS}, not {config.method!r}")
    if config.clahe:
        scaled = np.stack([equalize_adapthist(c, clip_limit=0.01) for c in scaled])
    return scaled.astype(np.float32), category
