"""Reading images and label images with precise errors at the boundary."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
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


def read_image(path: Path | str, channel: int | None = None) -> np.ndarray:
    """Read a PNG/TIFF/JPEG image as a numpy array, keeping its bit depth.

    Returns ``H x W`` (gray) or ``H x W x C`` (C = 3 or 4).  Palette images are expanded to
    RGB(A), 1-bit to uint8 0/255, LA to gray.  ``channel`` picks one channel (``H x W``) of
    a colour or multi-channel image.  Raises :class:`NucsegInputError` naming the file for
    missing, empty, truncated, non-image or oversized files, and for stacks of several
    planes (:func:`image_planes` reads those one plane at a time).
    """
    planes = image_planes(path, channel)
    if len(planes) > 1:
        raise NucsegInputError(
            f"{path}: a stack of {len(planes)} planes ({planes[0].layout}); "
            "expected one 2-D image (nucseg predict segments each plane)"
        )
    return planes[0].read()


@dataclass(frozen=True)
class Plane:
    """One 2-D image of an image file: the whole file, or one plane of a TIFF stack.

    ``suffix`` tells the planes of a stack apart (``""`` for a 2-D file; ``_t3_z07`` for
    time 3, depth 7: one lower-case letter per stack axis of more than one plane, in
    tifffile's axis letters, ``i`` for pages of unknown meaning, indices zero-padded to the
    axis' width); ``page`` is its page in the file's first TIFF series (None: the whole
    file); ``channel`` the channel it keeps of a colour page; ``layout`` describes the file
    (``axes TZCYX, shape 2x3x2x16x16``) for messages; ``stack_axes`` and ``stack_shape``
    are the stack's axes that the suffix names, upper case (``TZ``), and their sizes:
    the planes of one file, in its order, fill that shape."""

    path: Path
    suffix: str = ""
    page: int | None = None
    channel: int | None = None
    layout: str = ""
    stack_axes: str = ""
    stack_shape: tuple[int, ...] = ()

    def read(self) -> np.ndarray:
        """This plane as ``H x W`` or ``H x W x C`` (see :func:`read_image`)."""
        if self.page is None:
            image = _read_flat(self.path)
        else:
            image = _read_tiff_page(self.path, self.page)
        return _pick_channel(image, self.channel, self.path)


def image_planes(path: Path | str, channel: int | None = None) -> list[Plane]:
    """The 2-D planes of an image file, each read on demand (:meth:`Plane.read`), so that
    a long time-lapse never sits in memory whole.

    PNG/JPEG files and 2-D TIFFs are one plane.  A TIFF stack (a time-lapse, a z-stack, an
    ImageJ hyperstack, an OME-TIFF, pages of unknown meaning) is one plane per index of
    its axes other than Y, X, samples and channels, in the file's order.  A channel axis
    (``C``) needs ``channel``, the nuclear stain's index: which channel holds the nuclei
    no statistic can tell reliably.  ``channel`` also picks a channel of a colour (RGB)
    image."""
    path = Path(path)
    if not path.is_file():
        raise NucsegInputError(f"{path}: image file not found")
    if path.stat().st_size == 0:
        raise NucsegInputError(f"{path}: image file is empty (0 bytes)")
    if path.suffix.lower() not in _TIFF_SUFFIXES:
        return [Plane(path, channel=channel)]
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, axes, page_shape = tuple(series.shape), series.axes, series.keyframe.shape
            samples = series.keyframe.samplesperpixel
            _check_page_size(series.keyframe, path)
    except NucsegInputError:
        raise
    except Exception as error:  # tifffile raises many types for broken files
        raise _tiff_error(path, error) from None
    stack_axes = axes[: len(shape) - len(page_shape)]
    if channel is not None and "C" not in stack_axes and not 0 <= channel < samples:
        raise _no_channel(path, channel, samples)
    if not stack_axes:
        return [Plane(path, channel=channel)]
    sizes = shape[: len(stack_axes)]
    layout = f"axes {axes}, shape {'x'.join(map(str, shape))}"
    channel_axis = stack_axes.find("C")  # -1: none; else its pages are the channels
    if channel_axis >= 0:
        count = sizes[channel_axis]
        if channel is None:
            raise NucsegInputError(
                f"{path}: {count} channels ({layout}); choose the nuclear stain's "
                f"(nucseg predict --channel 0..{count - 1})"
            )
        if not 0 <= channel < count:
            raise _no_channel(path, channel, count)
    pairs = zip(stack_axes, sizes, strict=True)
    named = [(axis, size) for axis, size in pairs if axis != "C" and size > 1]
    named_axes = "".join("I" if axis == "Q" else axis for axis, _ in named)
    named_shape = tuple(size for _, size in named)
    planes = []
    for index in np.ndindex(*sizes):
        if channel_axis >= 0 and index[channel_axis] != channel:
            continue
        suffix = "".join(
            f"_{'i' if axis in 'QI' else axis.lower()}{i:0{len(str(size - 1))}d}"
            for axis, i, size in zip(stack_axes, index, sizes, strict=True)
            if axis != "C" and size > 1
        )
        page = int(np.ravel_multi_index(index, sizes))
        page_channel = None if channel_axis >= 0 else channel  # the page is the channel
        planes.append(Plane(path, suffix, page, page_channel, layout, named_axes, named_shape))
    return planes


def _pick_channel(image: np.ndarray, channel: int | None, path: Path) -> np.ndarray:
    if channel is None:
        return image
    count = image.shape[-1] if image.ndim == 3 else 1
    if not 0 <= channel < count:
        raise _no_channel(path, channel, count)
    return image if image.ndim == 2 else np.ascontiguousarray(image[..., channel])


def _no_channel(path: Path, channel: int, count: int) -> NucsegInputError:
    return NucsegInputError(
        f"{path}: no channel {channel} (it has {count}: {'0' if count == 1 else f'0..{count - 1}'})"
    )


def _read_flat(path: Path) -> np.ndarray:
    """A PNG/JPEG file, or a TIFF of one page."""
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


def _read_tiff_page(path: Path, page: int) -> np.ndarray:
    """Page ``page`` of the first series of a TIFF stack (one plane)."""
    try:
        with tifffile.TiffFile(path) as tif:
            array = tif.series[0].asarray(key=page)
    except Exception as error:  # tifffile raises many types for broken files
        raise _tiff_error(path, error) from None
    return _channels_last(array)


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
            _check_page_size(page, path)
            array = page.asarray()
    except NucsegInputError:
        raise
    except Exception as error:  # tifffile raises many types for broken files
        raise _tiff_error(path, error) from None
    return _channels_last(array)


def _check_page_size(page: tifffile.TiffPage, path: Path) -> None:
    if page.imagewidth * page.imagelength > MAX_PIXELS:
        raise NucsegInputError(
            f"{path}: {page.imagewidth}x{page.imagelength} image exceeds {MAX_PIXELS} pixels; "
            "tile it before use"
        )


def _tiff_error(path: Path, error: Exception) -> NucsegInputError:
    if "requires the 'imagecodecs' package" in str(error):
        return NucsegInputError(
            f"{path}: TIFF compressed with a codec this installation lacks ({error}); "
            "install the pinned imagecodecs (pip install -c requirements.lock imagecodecs)"
        )
    return NucsegInputError(f"{path}: corrupt or unreadable TIFF ({error})")


def _channels_last(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[-1] not in (3, 4):
        return np.moveaxis(array, 0, -1)  # planar RGB
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
