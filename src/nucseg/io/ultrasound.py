"""Ultrasound nerve data sets: the reader of the Kaggle 2016 layout the nerve task works
on, and real sets in other layouts converted into it.

The nerve task (:mod:`nucseg.nerve`) reads the Kaggle 2016 ultrasound-nerve-segmentation
layout: ``train/<subject>_<n>.tif`` + ``train/<subject>_<n>_mask.tif`` (0/255),
``test/<n>.tif`` and the test masks as an ``img,pixels`` CSV.  Other sets are converted into
it once (rule ``nerve_convert``), each image in its own size.

``usgra`` (tmkand/usgra-seg, CC BY 4.0): ``images/NNNN.png`` + ``masks/NNNN.png``, masks in
palette mode with index 0 background, 1 nerve, 2 blood vessel; the author's held-out split
in ``test/images`` + ``test/masks``.  Images are gray or near-gray RGB (averaged to gray);
there is no subject id, so every training image gets subject 0.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from nucseg.errors import NucsegInputError
from nucseg.io.atomic import atomic_directory
from nucseg.io.images import binary_mask, read_image, read_palette_indices, write_tiff

#: readable nerve-set formats and the palette index of "nerve" in their masks
NERVE_FORMATS = {"usgra": 1}
USGRA_CLASSES = 3  # background, nerve, blood vessel
_TRAIN_NAME = re.compile(r"^(\d+)_(\d+)\.tif$")
_TEST_NAME = re.compile(r"^(\d+)\.tif$")


def usgra_pairs(folder: Path | str) -> list[tuple[int, Path, Path]]:
    """``(number, image, mask)`` of an ``images/`` + ``masks/`` folder, by number."""
    folder = Path(folder)
    images = folder / "images"
    if not images.is_dir():
        raise NucsegInputError(f"{folder}: no images/ folder (usgra layout: images/, masks/)")
    pairs = []
    for path in sorted(images.glob("*.png")):
        if not path.stem.isdigit():
            raise NucsegInputError(f"{path}: expected a name NNNN.png")
        mask = folder / "masks" / path.name
        if not mask.is_file():
            raise NucsegInputError(f"{path}: no masks/{path.name} beside it")
        pairs.append((int(path.stem), path, mask))
    if not pairs:
        raise NucsegInputError(f"{images}: no NNNN.png images")
    return pairs


def gray_image(path: Path) -> np.ndarray:
    """An ultrasound frame as 8-bit gray (near-gray RGB averaged)."""
    image = read_image(path)
    if image.ndim == 3:
        image = image[..., :3].mean(axis=2).round().astype(np.uint8)
    if image.dtype != np.uint8:
        raise NucsegInputError(f"{path}: dtype {image.dtype}; expected an 8-bit frame")
    return image


def nerve_mask(mask_path: Path, shape: tuple[int, int], nerve_index: int) -> np.ndarray:
    """The nerve pixels (bool) of a palette annotation."""
    return read_palette_indices(mask_path, shape, USGRA_CLASSES) == nerve_index


def write_nerve_layout(format_name: str, dataset: Path | str, out_dir: Path | str) -> int:
    """Write ``dataset`` (``format_name``) as ``out_dir/train``, ``out_dir/test`` and
    ``out_dir/test_solution.csv`` in the Kaggle 2016 layout (see the module docstring);
    returns the number of training pairs.  The folder is replaced whole."""
    from nucseg.nerve import write_nerve_submission

    if format_name not in NERVE_FORMATS:
        raise NucsegInputError(
            f"nerve.source.format: {format_name!r} is not one of {', '.join(NERVE_FORMATS)}"
        )
    nerve_index, dataset = NERVE_FORMATS[format_name], Path(dataset)
    train, test = usgra_pairs(dataset), usgra_pairs(dataset / "test")
    with atomic_directory(out_dir) as target:
        (target / "train").mkdir()
        (target / "test").mkdir()
        for number, image_path, mask_path in train:
            image = gray_image(image_path)
            mask = nerve_mask(mask_path, image.shape, nerve_index)
            write_tiff(image, target / "train" / f"0_{number}.tif")
            write_tiff(mask.astype(np.uint8) * 255, target / "train" / f"0_{number}_mask.tif")
        solution = {}
        for number, image_path, mask_path in test:
            image = gray_image(image_path)
            solution[number] = nerve_mask(mask_path, image.shape, nerve_index)
            write_tiff(image, target / "test" / f"{number}.tif")
        write_nerve_submission(solution, target / "test_solution.csv")
    return len(train)


def list_train(folder: Path | str) -> pd.DataFrame:
    """The training pairs of a ``train/`` folder: id (``<subject>_<n>``), subject, image and
    mask paths, sorted by subject and number. Every image needs its ``_mask.tif``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NucsegInputError(f"{folder}: folder not found (expected <subject>_<n>.tif files)")
    rows = []
    for path in sorted(folder.glob("*.tif")):
        if path.name.endswith("_mask.tif"):
            if not path.with_name(path.name.replace("_mask.tif", ".tif")).is_file():
                raise NucsegInputError(f"{path}: mask without its image")
            continue
        match = _TRAIN_NAME.match(path.name)
        if match is None:
            raise NucsegInputError(f"{path}: expected a name <subject>_<n>.tif")
        mask = path.with_name(f"{path.stem}_mask.tif")
        if not mask.is_file():
            raise NucsegInputError(f"{path}: no {mask.name} beside it")
        rows.append((path.stem, int(match[1]), int(match[2]), path, mask))
    if not rows:
        raise NucsegInputError(f"{folder}: no <subject>_<n>.tif images")
    table = pd.DataFrame(rows, columns=["id", "subject", "number", "image", "mask"])
    return table.sort_values(["subject", "number"], ignore_index=True)


def list_test(folder: Path | str) -> list[tuple[int, Path]]:
    """``(n, path)`` of the ``<n>.tif`` images of a ``test/`` folder, by number."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NucsegInputError(f"{folder}: folder not found (expected <n>.tif files)")
    found = []
    for path in folder.glob("*.tif"):
        match = _TEST_NAME.match(path.name)
        if match is None:
            raise NucsegInputError(f"{path}: expected a name <n>.tif")
        found.append((int(match[1]), path))
    if not found:
        raise NucsegInputError(f"{folder}: no <n>.tif images")
    return sorted(found)


def read_gray(path: Path) -> np.ndarray:
    image = read_image(path)
    if image.ndim != 2:
        raise NucsegInputError(
            f"{path}: expected a grayscale image, found {image.shape[2]} channels"
        )
    return image


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A boolean mask from a 0/255 (or 0/1) image of ``shape``."""
    return binary_mask(read_gray(path), shape, path)
