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

import functools
from dataclasses import dataclass

import numpy as np
from skimage.color import rgb2hed, rgb2lab
from skimage.exposure import equalize_adapthist

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


#: Where the median gray level sits between an image's darkest and brightest values (its
#: 0.1th and 99.9th percentiles) below which the nuclei are the bright tail.  Measured on the
#: real sets of ../shared/realdata: fluorescence 0.00-0.19 (DSB2018 541, Coelho 48, CTC 4),
#: brightfield 0.86-0.95, H&E 0.30-0.95 (the dark H&E tiles are told apart by colour).
BRIGHT_TAIL_POSITION = 0.4


def colour_channels(image: np.ndarray) -> np.ndarray:
    """``H x W x 3`` in the image's own dtype and values: alpha dropped, gray replicated."""
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.shape[-1] == 1:
        return np.repeat(image, 3, axis=2)
    return image[..., :3]


def colour_planes(image: np.ndarray) -> list[np.ndarray]:
    """The image's colour planes as float32 ``H x W`` arrays: one for a gray image (2-D or
    one channel), else red, green and blue (alpha dropped).  Per-pixel statistics over the
    channels (max, min, mean) are ``np.maximum``/``np.minimum``/sums of these planes, not
    numpy reductions over a last axis of 3: the whole normalisation runs ~4x faster so
    (``benchmarks/bench_predict.py normalize``), with identical results."""
    if image.ndim == 2:
        return [image.astype(np.float32)]
    if image.shape[-1] == 1:
        return [image[..., 0].astype(np.float32)]
    return [image[..., c].astype(np.float32) for c in range(3)]


def channel_mean(planes: list[np.ndarray]) -> np.ndarray:
    """Per-pixel mean over :func:`colour_planes` (float32, as ``mean(axis=2)`` of the
    replicated ``H x W x 3`` image)."""
    if len(planes) == 1:
        return planes[0]
    red, green, blue = planes
    return (red + green + blue) / np.float32(3)


def intensity_range(image: np.ndarray) -> tuple[float, float]:
    """``(black, white)``: the values an image's intensities span.  An 8-bit image is a
    display rendering: 0 and 255.  A deeper one (12/16-bit, float) has an unknown camera
    offset and gain: its 0.01th and 99.99th percentiles (robust to hot pixels)."""
    if image.dtype == np.uint8:
        return 0.0, 255.0
    black, white = np.percentile(colour_channels(image), [0.01, 99.99])
    if white <= black:  # a flat image: any positive span (relative: floats reach 3e38)
        white = black + max(1e-6, abs(black) * 1e-6)
    return float(black), float(white)


def unit_rgb(image: np.ndarray) -> np.ndarray:
    """RGB as scikit-image's colour conversions read it (``[0, 1]`` = black to white): 8-bit
    images as they are (uint8), deeper ones divided by their white level (float64)."""
    rgb = colour_channels(image)
    if rgb.dtype == np.uint8:
        return rgb
    _black, white = intensity_range(image)
    return np.clip(rgb.astype(np.float64) / white, 0.0, 1.0)


def detect_category(image: np.ndarray) -> str:
    """Guess the acquisition kind of an RGB(A)/gray image of any bit depth.

    Every statistic is taken on the image's own values, never on an 8-bit rendering (a
    16-bit frame with a camera offset near 33,000 and nuclei a few hundred counts above it
    renders as flat light gray).  Polarity: nuclei are the bright tail when the median gray
    level sits in the lower part of the image's range (:data:`BRIGHT_TAIL_POSITION`), which
    holds with any offset or gain.  Colour: chroma (max - min channel) in 8-bit units of the
    image's range (:func:`intensity_range`).  An image coloured throughout (median chroma
    >= 20) is H&E (one of the 13 MoNuSeg tiles is dark and dense: median chroma 54; every
    DSB2018 fluorescence image has chroma 0); otherwise bright-tail images are fluorescence
    (gray or tinted nuclei on black); the rest are histology when a quarter of their pixels
    is colourful (75th percentile of chroma above 20) or their nuclei are strongly coloured
    (99th percentile above 35: pale "purple on white" H&E), else brightfield (gray-ish: on
    300 generated images their 99th percentile of chroma stays below 28, H&E's above 41).
    """
    planes = colour_planes(image)
    if len(planes) == 3:
        black, white = intensity_range(image)
        spread = functools.reduce(np.maximum, planes) - functools.reduce(np.minimum, planes)
        chroma = spread * np.float32(255.0 / (white - black))
        if np.median(chroma) >= 20:
            return "histology"
    darkest, median, brightest = np.percentile(channel_mean(planes), [0.1, 50, 99.9])
    position = (median - darkest) / (brightest - darkest) if brightest > darkest else 0.0
    if position < BRIGHT_TAIL_POSITION:
        return "fluorescence"
    if len(planes) == 1:  # gray: no colour at all
        return "brightfield"
    coloured = np.percentile(chroma, 75) > 20 or np.percentile(chroma, 99) > 35
    return "histology" if coloured else "brightfield"


LIGHT_BACKGROUND_SHARE = 0.75  # dark_end_share of real whole brightfield images: 0.90 and more


def dark_end_share(image: np.ndarray) -> float:
    """The dark end's share of the spread of the two ends of the gray levels (the channel
    mean): ``(p10 - p0.1) / ((p10 - p0.1) + (p99.9 - p90))``.  A flat background makes its
    end compact: near 0 for fluorescence (a dark one), near 1 for brightfield (a light one,
    its nuclei spread over the dark end; 0.90-0.96 on the 16 brightfield images of DSB2018
    and the demo's 2; generated ones, whose background is less flat, 0.6-1.0).
    Fluorescence whose nuclei cover most of the image, which :func:`detect_category` calls
    brightfield, spreads its bright end over the nuclei (median 0.25 on such crops of
    DSB2018 and Coelho).  0.5 for a flat image."""
    lowest, dark, bright, highest = np.percentile(
        channel_mean(colour_planes(image)), [0.1, 10, 90, 99.9]
    )
    ends = (dark - lowest) + (highest - bright)
    return float((dark - lowest) / ends) if ends > 0 else 0.5


def nuclei_bright(image: np.ndarray, category: str) -> np.ndarray:
    """Convert to one float channel where nuclei are bright (not yet rescaled), from the
    image's own values (any bit depth; percentile scaling removes offset and gain)."""
    if category == "fluorescence":
        return functools.reduce(np.maximum, colour_planes(image))
    if category == "brightfield":
        _black, white = intensity_range(image)
        return np.float32(white) - channel_mean(colour_planes(image))
    if category == "histology":
        return rgb2hed(unit_rgb(image))[..., 0].astype(np.float32)
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
    image: np.ndarray, config: NormalizeConfig = NormalizeConfig(), category: str | None = None
) -> tuple[np.ndarray, str]:
    """Full normalisation: ``(float32 C x H x W in [0, 1] with bright nuclei, category)``;
    ``category``: the image's kind when it is known (:func:`detect_category` otherwise)."""
    if category is None:
        category = detect_category(image)
    elif category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")
    if config.method == "auto":
        scaled = percentile_scale(nuclei_bright(image, category)[None], config)
    elif config.method == "lab":
        lightness = rgb2lab(unit_rgb(image))[..., 0].astype(np.float32)
        lightness = lightness if category == "fluorescence" else 100.0 - lightness
        scaled = percentile_scale(lightness[None], config)
    elif config.method in ("rgb", "auto+rgb"):
        rgb = np.moveaxis(colour_channels(image), -1, 0).astype(np.float32)
        white = np.float32(intensity_range(image)[1])
        scaled = percentile_scale(rgb if category == "fluorescence" else white - rgb, config)
        if config.method == "auto+rgb":
            first = percentile_scale(nuclei_bright(image, category)[None], config)
            scaled = np.concatenate([first, scaled])
    else:
        raise ValueError(f"normalize.method must be one of {METHODS}, not {config.method!r}")
    if config.clahe:
        scaled = np.stack([equalize_adapthist(c, clip_limit=0.01) for c in scaled])
    return scaled.astype(np.float32), category
