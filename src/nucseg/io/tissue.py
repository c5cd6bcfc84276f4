"""The tissue task's on-disk layout: ``images/<name>.png`` RGBA tissue tiles and
``masks/<name>.png`` palette-mode (P) annotations of the same name whose palette indices are
the classes (:data:`CLASSES`); class maps are written back the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from nucseg.errors import NucsegInputError
from nucseg.io.atomic import atomic_path
from nucseg.io.images import read_image, to_rgb8

#: the classes, by palette index
CLASSES = ("background", "stroma", "tumour", "necrosis")
#: display colours of the classes (also the masks' palette)
COLOURS = np.array([[255, 255, 255], [230, 120, 160], [110, 40, 150], [240, 200, 80]], np.uint8)


def save_class_map(classes: np.ndarray, path: Path | str) -> None:
    """A palette-mode PNG whose pixel values are the classes (palette: :data:`COLOURS`)."""
    image = Image.fromarray(classes.astype(np.uint8), mode="P")
    image.putpalette(COLOURS.flatten().tolist() + [0] * (768 - COLOURS.size))
    with atomic_path(path) as tmp:
        image.save(tmp)


def read_tissue_image(path: Path) -> np.ndarray:
    """``3 x H x W`` float32 in [0, 1]: RGBA composited on white (RGB, gray and other modes
    as :func:`nucseg.io.images.read_image` and :func:`~nucseg.io.images.to_rgb8` take them)."""
    image = read_image(path)
    if image.ndim == 3 and image.shape[2] == 4 and image.dtype == np.uint8:
        alpha = image[..., 3:] / 255.0
        image = np.round(image[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    pixels = to_rgb8(image).astype(np.float32) / 255
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def list_pairs(images: Path | str, masks: Path | str) -> list[tuple[str, Path, Path]]:
    """``(name, image, mask)`` of every ``images/*.png`` with its same-named mask."""
    images, masks = Path(images), Path(masks)
    for folder in (images, masks):
        if not folder.is_dir():
            raise NucsegInputError(f"{folder}: folder not found")
    pairs = []
    for image in sorted(images.glob("*.png")):
        mask = masks / image.name
        if not mask.is_file():
            raise NucsegInputError(f"{image}: no annotation {mask}")
        pairs.append((image.stem, image, mask))
    if not pairs:
        raise NucsegInputError(f"{images}: no .png images")
    return pairs
