"""Kaggle DSB2018 stage1 layout and CSV formats.

Folder layout (stage1_train; stage1_test has no ``masks/``)::

    <root>/<id>/images/<id>.png
    <root>/<id>/masks/<mask_id>.png     # one nucleus per file, 0 background / 255 nucleus

CSV forms: labels ``ImageId,EncodedPixels`` (stage1_train_labels.csv) and solution
``ImageId,EncodedPixels,Height,Width[,Usage]`` (stage1_solution.csv), one row per nucleus,
RLE as in :mod:`nucseg.rle`.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from nucseg.errors import NucsegInputError
from nucseg.io.atomic import atomic_path
from nucseg.io.images import binary_mask, read_image
from nucseg.io.instances import crop_to_mask, paint_instances
from nucseg.io.sources import SourceItem, SourceOptions
from nucseg.rle import decode_labels, decode_rle, encode_labels

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")


def check_image_id(image_id: str, where: str) -> str:
    """Return ``image_id`` if it is safe as a file name, else raise naming ``where``."""
    if not _SAFE_ID.match(image_id) or ".." in image_id:
        raise NucsegInputError(f"{where}: image id {image_id!r} is not safe as a file name")
    return image_id


@dataclass(frozen=True)
class Stage1Entry:
    """One image folder of a stage1 tree."""

    image_id: str
    image_path: Path
    mask_paths: tuple[Path, ...]


def list_stage1(root: Path | str, *, require_masks: bool) -> list[Stage1Entry]:
    """List the image folders of a stage1 tree, sorted by id, checking the layout."""
    root = Path(root)
    if not root.is_dir():
        raise NucsegInputError(
            f"{root}: folder not found (expected a Kaggle stage1 layout <id>/images/<id>.png)"
        )
    entries = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        image_id = check_image_id(folder.name, str(folder))
        candidates = [folder / "images" / f"{image_id}{suffix}" for suffix in IMAGE_SUFFIXES]
        image_path = next((c for c in candidates if c.is_file()), None)
        if image_path is None:
            raise NucsegInputError(f"{folder}: no images/{image_id}.png in this image folder")
        mask_dir = folder / "masks"
        masks = tuple(sorted(mask_dir.glob("*.png"))) if mask_dir.is_dir() else ()
        if require_masks and not masks:
            raise NucsegInputError(
                f"{folder}: no masks/*.png (training images need one mask per nucleus)"
            )
        entries.append(Stage1Entry(image_id, image_path, masks))
    if not entries:
        raise NucsegInputError(f"{root}: no image folders found (expected <id>/images/<id>.png)")
    return entries


def list_items(root: Path, options: SourceOptions) -> list[SourceItem]:
    """The training images of a stage1 tree, nuclei from ``masks/*.png`` or, when
    ``options.labels_csv`` is set, from that labels CSV."""
    if options.labels_csv is None:
        return [
            SourceItem(
                e.image_id,
                e.image_id,
                e.image_path,
                partial(read_mask_labels, e.mask_paths, overlap=options.overlap),
            )
            for e in list_stage1(root, require_masks=True)
        ]
    path = Path(options.labels_csv)
    table = read_csv_columns(path, ["ImageId", "EncodedPixels"])
    rows = {str(k): g["EncodedPixels"].tolist() for k, g in table.groupby("ImageId", sort=True)}
    entries = list_stage1(root, require_masks=False)
    unknown = sorted(set(rows) - {e.image_id for e in entries})
    if unknown:
        raise NucsegInputError(f"{path}: image {unknown[0]} has rows but no folder in {root}")
    items = []
    for entry in entries:
        if entry.image_id not in rows:
            raise NucsegInputError(f"{path}: no rows for image {entry.image_id}")
        where = f"{path} (image {entry.image_id})"
        read = partial(labels_from_rle, rows[entry.image_id], where=where, overlap=options.overlap)
        items.append(SourceItem(entry.image_id, entry.image_id, entry.image_path, read))
    return items


def labels_from_rle(
    encodings: list[str], shape: tuple[int, int], *, where: str, overlap: str = "larger"
) -> np.ndarray:
    """Instance labels from one image's nucleus encodings (empty ones skipped), with the
    overlap policy of :func:`nucseg.io.instances.paint_instances`."""
    nuclei = [
        crop_to_mask(decode_rle(rle, shape, where=where), f"{where} row {number}")
        for number, rle in enumerate(encodings, start=1)
        if isinstance(rle, str) and rle.strip()
    ]
    return paint_instances(nuclei, shape, overlap=overlap)


def read_mask_labels(
    mask_paths: tuple[Path, ...], shape: tuple[int, int], *, overlap: str = "larger"
) -> np.ndarray:
    """Combine per-nucleus binary mask PNGs into instance labels 1..N (in path order).

    Each mask must have the image's ``shape``, hold only two values (0 and one positive
    value) and be non-empty.  Overlaps follow ``overlap`` (see
    :func:`nucseg.io.instances.paint_instances`).
    """
    nuclei = []
    for path in mask_paths:
        mask = read_image(path)
        if mask.ndim == 3:
            mask = mask[..., 0]
        nuclei.append(crop_to_mask(binary_mask(mask, shape, path), str(path)))
    return paint_instances(nuclei, shape, overlap=overlap)


def write_solution_csv(instances: dict[str, np.ndarray], path: Path | str) -> None:
    """Write Kaggle's stage1_solution form ``ImageId,EncodedPixels,Height,Width``: one row
    per nucleus of each ``{image_id: instance_labels}`` (ids sorted; RLE as in
    :mod:`nucseg.rle`), atomically; :func:`read_solution_csv` reads it back."""
    with atomic_path(Path(path)) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ImageId", "EncodedPixels", "Height", "Width"])
        for image_id in sorted(instances):
            height, width = instances[image_id].shape
            for rle in encode_labels(instances[image_id]).values():
                writer.writerow([image_id, rle, height, width])


def read_solution_csv(path: Path | str) -> dict[str, np.ndarray]:
    """Read a stage1_solution CSV into ``{image_id: instance_labels}``.

    Rows with empty EncodedPixels mark images without nuclei.
    """
    path = Path(path)
    table = read_csv_columns(path, ["ImageId", "EncodedPixels", "Height", "Width"])
    solution = {}
    for image_id, rows in table.groupby("ImageId", sort=True):
        heights, widths = rows["Height"].unique(), rows["Width"].unique()
        if heights.size != 1 or widths.size != 1:
            raise NucsegInputError(f"{path}: image {image_id} has inconsistent Height/Width rows")
        shape = (int(heights[0]), int(widths[0]))
        solution[str(image_id)] = decode_labels(
            rows["EncodedPixels"].fillna("").tolist(), shape, where=f"{path} (image {image_id})"
        )
    return solution


def read_solutions(paths: list[Path | str]) -> dict[str, np.ndarray]:
    """The union of several solution CSVs (:func:`read_solution_csv`); an image id in two
    of them is an error."""
    solution: dict[str, np.ndarray] = {}
    for path in paths:
        for image_id, labels in read_solution_csv(path).items():
            if image_id in solution:
                raise NucsegInputError(f"{path}: image {image_id} is also in another solution")
            solution[image_id] = labels
    return solution


def read_csv_columns(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise NucsegInputError(f"{path}: CSV file not found")
    try:
        table = pd.read_csv(
            path, dtype={"ImageId": str, "EncodedPixels": str}, keep_default_na=False
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise NucsegInputError(f"{path}: not a readable CSV ({error})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise NucsegInputError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(columns)}"
        )
    return table
