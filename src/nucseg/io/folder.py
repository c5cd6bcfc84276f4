"""A plain folder of users' own data: ``<name>.png|tif`` beside ``<name>_label.tif``.

The label image holds instances (0 = background, one integer per nucleus).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from nucseg.errors import NucsegInputError
from nucseg.io.images import read_label_image
from nucseg.io.kaggle import check_image_id
from nucseg.io.sources import SourceItem, SourceOptions

_IMAGE_SUFFIXES = (".png", ".tif", ".tiff")


def list_items(root: Path, options: SourceOptions) -> list[SourceItem]:
    """List image/label pairs; images without a label file are an error."""
    if not root.is_dir():
        raise NucsegInputError(
            f"{root}: folder not found (expected <name>.png with <name>_label.tif)"
        )
    items = []
    for image_path in sorted(root.iterdir()):
        if image_path.suffix.lower() not in _IMAGE_SUFFIXES or image_path.stem.endswith("_label"):
            continue
        label_path = root / f"{image_path.stem}_label.tif"
        if not label_path.is_file():
            raise NucsegInputError(f"{image_path}: no label image {label_path.name} beside it")
        image_id = check_image_id(image_path.stem, str(image_path))
        items.append(
            SourceItem(image_id, image_id, image_path, partial(read_label_image, label_path))
        )
    if not items:
        raise NucsegInputError(
            f"{root}: no images found (expected <name>.png with <name>_label.tif)"
        )
    return items
