"""TCGA / MoNuSeg: H&E tiles (``.tif``) with Aperio ImageScope XML nucleus polygons.

Layout (as distributed)::

    <root>/Tissue Images/<name>.tif     (or <root>/<name>.tif)
    <root>/Annotations/<name>.xml       (or <root>/<name>.xml)

XML: ``Annotations/Annotation/Regions/Region/Vertices/Vertex`` with float ``X`` (column) and
``Y`` (row) attributes, in pixels.  Each region is rasterised with
``skimage.draw.polygon``; overlapping regions are resolved as in
:func:`nucseg.io.instances.paint_instances`.  XML is parsed with defusedxml (no entity
expansion, no external entities).
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np
from defusedxml import ElementTree
from skimage.draw import polygon

from nucseg.errors import NucsegInputError
from nucseg.io.instances import NucleusMask, paint_instances
from nucseg.io.kaggle import check_image_id
from nucseg.io.sources import SourceItem, SourceOptions

log = logging.getLogger(__name__)


def read_polygons(path: Path) -> list[np.ndarray]:
    """The nucleus polygons of an Aperio XML file, each ``K x 2`` as ``(row, column)``."""
    try:
        root = ElementTree.parse(path).getroot()
    except FileNotFoundError:
        raise NucsegInputError(f"{path}: annotation file not found") from None
    except Exception as error:  # ParseError and defusedxml's refusals
        raise NucsegInputError(f"{path}: not a readable XML annotation ({error})") from None
    polygons, degenerate = [], []
    for number, region in enumerate(root.iter("Region"), start=1):
        vertices = region.findall("./Vertices/Vertex")
        try:
            points = np.array([[float(v.attrib["Y"]), float(v.attrib["X"])] for v in vertices])
        except (KeyError, ValueError):
            raise NucsegInputError(
                f"{path}: region {region.get('Id', number)} has a vertex without numeric X and Y"
            ) from None
        if not np.isfinite(points).all():
            raise NucsegInputError(
                f"{path}: region {region.get('Id', number)} has a non-finite vertex"
            )
        if len(points) < 3:
            degenerate.append(region.get("Id", str(number)))
            continue
        polygons.append(points)
    if degenerate:  # real MoNuSeg files hold a few (e.g. a 2-vertex region): no area to paint
        log.warning(
            "%s: %d regions with fewer than 3 vertices skipped (ids %s)",
            path,
            len(degenerate),
            ", ".join(degenerate[:10]),
        )
    if not polygons:
        raise NucsegInputError(f"{path}: no Region with Vertices (expected Aperio ImageScope XML)")
    return polygons


def rasterise(path: Path, shape: tuple[int, int], overlap: str = "larger") -> np.ndarray:
    """Instance labels of an XML annotation for an image of ``shape`` (regions in file order)."""
    nuclei = []
    for number, points in enumerate(read_polygons(path), start=1):
        rows, cols = polygon(points[:, 0], points[:, 1], shape)
        if rows.size == 0:
            continue  # polygon entirely outside the image or degenerate
        top, left = rows.min(), cols.min()
        mask = np.zeros((rows.max() - top + 1, cols.max() - left + 1), bool)
        mask[rows - top, cols - left] = True
        window = (slice(top, rows.max() + 1), slice(left, cols.max() + 1))
        nuclei.append(NucleusMask(window, mask, f"{path} (region {number})"))
    return paint_instances(nuclei, shape, overlap=overlap)


def list_items(root: Path, options: SourceOptions) -> list[SourceItem]:
    """List the annotated tiles of a MoNuSeg-style folder."""
    if not root.is_dir():
        raise NucsegInputError(f"{root}: folder not found (expected MoNuSeg tiles and XML)")
    image_dir = root / "Tissue Images" if (root / "Tissue Images").is_dir() else root
    xml_dir = root / "Annotations" if (root / "Annotations").is_dir() else root
    items = []
    for image_path in sorted(image_dir.glob("*.tif")):
        xml_path = xml_dir / f"{image_path.stem}.xml"
        if not xml_path.is_file():
            raise NucsegInputError(f"{image_path}: no annotation {xml_path.name} in {xml_dir}")
        image_id = check_image_id(image_path.stem, str(image_path))
        items.append(
            SourceItem(image_id, image_id, image_path, partial(_labels, xml_path, options.overlap))
        )
    if not items:
        raise NucsegInputError(f"{root}: no .tif tiles found (expected 'Tissue Images/*.tif')")
    return items


def _labels(xml_path: Path, overlap: str, shape: tuple[int, int]) -> np.ndarray:
    return rasterise(xml_path, shape, overlap)
