"""Reading images and label images with precise errors at the boundary."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from nucseg.errors import NucsegInputError
from nucseg.io.atomic import atomic_path
from nucseg.labels import relabel_sequential

#: Refuse images above this many pixels (a decompression bomb or a mistake, not a micrograph
#: this pipeline should hold in memory whole).
MAX_PIXELS = 64_000_000

_TIFF_SUFFIXES = {".tif", ".tiff"}


def read_image(path: Path | str) -> np.ndarray:
    """Read a PNG/TIFF/JPEG image as a numpy array, keeping its bit depth.

    Returns ``H x W`` (gray) or ``H x W x C`` (C = 3 or 4).  Palette images are expanded to
    RGB(A), 1-bit to uint8 0/255, LA to gray.  Raises :class:`NucsegInputError` naming the
    file for missing, empty, truncated, non-image or oversized files.
    """
    path = Path(path)
    if not path.is_file():
        raise NucsegInputError(f"{path}: image file not found")
    if path.stat().st_size == 0:
        raise NucsegInputError(f"{path}: image file is empty (0 bytes)")
    if path.suffix.lower() in _TIFF_SUFFIXES:
        return _read_tiff(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise NucsegInputError(
                        f"{path}: {image.width}x{image.height} image exceeds {MAX_PIXELS} pixels; "
                        "tile it before use"
                    )
                image.load()
                return _pil_to_array(image)
    except NucsegInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise NucsegInputError(
            f"{path}: image too large to read ({str(error).split(',')[0]}); tile it before use"
        ) from None
    except UnidentifiedImageError:
        raise NucsegInputError(f"{path}: not a readable image (unknown format)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise NucsegInputError(f"{path}: corrupt or truncated image ({error})") from None


def _pil_to_array(image: Image.Image) -> np.ndarray:
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode == "LA":
        image = image.getchannel("L")
    elif image.mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(image, dtype=np.uint16)
    elif image.mode == "I":
        return np.asarray(image, dtype=np.int32)
    elif image.mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGB")
    return np.asarray(image)


def _read_tiff(path: Path) -> np.ndarray:
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            if int(np.prod(page.shape[:2])) > MAX_PIXELS:
                raise NucsegInputError(
                    f"{path}: {page.shape} image exceeds {MAX_PIXELS} pixels; tile it"
                )
            array = page.asarray()
    except NucsegInputError:
        raise
    except Exception as error:  # tifffile raises many types for broken files
        if "requires the 'imagecodecs' package" in str(error):
            raise NucsegInputError(
                f"{path}: TIFF compressed with a codec this installation lacks ({error}); "
                "install the pinned imagecodecs (pip install -c requirements.lock imagecodecs)"
            ) from None
        raise NucsegInputError(f"{path}: corrupt or unreadable TIFF ({error})") from None
    if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[-1] not in (3, 4):
        array = np.moveaxis(array, 0, -1)  # planar RGB
    return array


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """Any image to ``H x W x 3`` uint8: drop alpha, replicate gray, rescale >8-bit depth."""
    if image.dtype != np.uint8:
        # deeper images: scale by a robust maximum so that a few hot pixels do not darken all
        image = image.astype(np.float64)
        top = np.percentile(image, 99.99)
        image = np.clip(np.round(image * (255.0 / top)), 0, 255) if top > 0 else image
        image = image.astype(np.uint8)
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.shape[-1] == 4:
        return np.ascontiguousarray(image[..., :3])
    if image.shape[-1] == 1:
        return np.repeat(image, 3, axis=2)
    return image


def binary_mask(mask: np.ndarray, shape: tuple[int, int], path: Path | str) -> np.ndarray:
    """``mask > 0`` after checking that the ``H x W`` mask read from ``path`` has its image's
    ``shape`` and at most two values, 0 and one other (0/255, 0/1 masks)."""
    if mask.shape != tuple(shape):
        raise NucsegInputError(
            f"{path}: mask is {mask.shape[0]}x{mask.shape[1]} "
            f"but its image is {shape[0]}x{shape[1]}"
        )
    values = np.unique(mask)
    if values.size > 2 or (values.size == 2 and values[0] != 0):
        raise NucsegInputError(f"{path}: mask is not binary (values {values[:5].tolist()}...)")
    return mask > 0


def write_png(array: np.ndarray, path: Path | str) -> None:
    """Write an array as PNG atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def write_image(image: np.ndarray, path: Path | str) -> None:
    """Write an ``H x W`` gray or ``H x W x 3`` RGB image in its own dtype (8/16-bit, float)
    as a zlib-compressed TIFF, atomically: unlike an 8-bit PNG, a 12/16-bit camera frame keeps
    every count.  Alpha is dropped."""
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    photometric = "rgb" if image.ndim == 3 else "minisblack"
    with atomic_path(path) as tmp:
        tifffile.imwrite(
            tmp, np.ascontiguousarray(image), photometric=photometric, compression="zlib"
        )


def write_tiff(array: np.ndarray, path: Path | str) -> None:
    """Write an array (labels, float images) as an uncompressed TIFF, atomically."""
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, array)


def read_tiff(path: Path | str) -> np.ndarray:
    """Read a TIFF written by :func:`write_tiff` (or any single-page TIFF)."""
    path = Path(path)
    if not path.is_file():
        raise NucsegInputError(f"{path}: file not found")
    return _read_tiff(path)


def write_channels(channels: np.ndarray, path: Path | str) -> None:
    """Write a channels-first ``C x H x W`` float image as one zlib-compressed TIFF page
    (``C`` samples per pixel, planar), atomically; :func:`read_channels` reads it back.
    (Compression shrinks the mostly binary target stacks ~16x for ~12 ms per 256² image.)"""
    if channels.ndim != 3:
        raise ValueError(f"expected a C x H x W array, got shape {channels.shape}")
    planar = "separate" if channels.shape[0] > 1 else None
    with atomic_path(path) as tmp:
        tifffile.imwrite(
            tmp, channels, photometric="minisblack", planarconfig=planar, compression="zlib"
        )


def read_channels(path: Path | str) -> np.ndarray:
    """Read a TIFF written by :func:`write_channels` as ``C x H x W`` (a plain 2-D TIFF
    becomes ``1 x H x W``)."""
    path = Path(path)
    if not path.is_file():
        raise NucsegInputError(f"{path}: file not found")
    try:
        with tifffile.TiffFile(path) as tif:
            channels = tif.pages[0].asarray()
    except Exception as error:  # tifffile raises many types for broken files
        raise NucsegInputError(f"{path}: corrupt or unreadable TIFF ({error})") from None
    return channels[None] if channels.ndim == 2 else channels


def read_label_image(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """An instance-label image (TIFF/PNG) as int32 labels 1..N, checking dtype and size."""
    labels = read_image(path)
    if labels.dtype.kind not in "ui":
        raise NucsegInputError(f"{path}: label image has dtype {labels.dtype}; expected integers")
    if labels.ndim != 2 or labels.shape != shape:
        raise NucsegInputError(f"{path}: label image is {labels.shape} but its frame is {shape}")
    if labels.min() < 0:
        raise NucsegInputError(f"{path}: label image has negative values")
    return relabel_sequential(labels)[0].astype(np.int32)


def read_palette_indices(path: Path | str, shape: tuple[int, int], n_classes: int) -> np.ndarray:
    """The classes of a palette-mode (P) annotation PNG: its palette indices (uint8),
    checked against the image's ``shape`` and the number of classes."""
    try:
        with Image.open(path) as image:
            mode = image.mode
            classes = np.asarray(image)
    except (OSError, SyntaxError, ValueError) as error:
        raise NucsegInputError(f"{path}: not a readable annotation ({error})") from None
    if mode != "P":
        raise NucsegInputError(f"{path}: annotation mode is {mode}; expected a palette (P) PNG")
    if classes.shape != tuple(shape):
        raise NucsegInputError(
            f"{path}: annotation is {classes.shape[0]}x{classes.shape[1]}, "
            f"its image {shape[0]}x{shape[1]}"
        )
    if classes.max() >= n_classes:
        raise NucsegInputError(f"{path}: class {classes.max()} beyond the {n_classes} classes")
    return classes.astype(np.uint8)
