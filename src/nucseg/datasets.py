"""Dataset versions: source conversion, assembly, normalisation, test-set preparation.

Each raw source is converted once (:func:`convert_source`) into ``results/sources/<name>/``
(same layout as below, without ``normalized/``); a dataset version is assembled from
converted sources by hardlinks (:func:`assemble_dataset`).  A dataset version folder holds::

    manifest.tsv           one row per image (see MANIFEST_COLUMNS)
    images/<id>.tif        the source image in its own bit depth (gray or RGB, zlib TIFF)
    labels/<id>.tif        instance labels (uint16, 0 = background)
    normalized/<id>.tif    float32 C x H x W nuclei-bright image in [0, 1] (nucseg.normalize)
    targets/<id>.tif       float32 4 x H x W training targets (nucseg.targets)
    stats.tsv              intensity statistics per category before/after normalisation
    folds/<k>/             one validation split as hardlinks (see nucseg.folds)

The test set is prepared the same way without labels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nucseg.acquisitions import cluster_acquisitions, origin_signature
from nucseg.crops import crop_image
from nucseg.errors import NucsegInputError
from nucseg.io.atomic import atomic_directory, link_or_copy
from nucseg.io.images import (
    read_channels,
    read_image,
    read_tiff,
    write_channels,
    write_image,
    write_tiff,
)
from nucseg.io.kaggle import list_stage1
from nucseg.io.sources import SOURCE_FORMATS, SourceOptions, list_source
from nucseg.io.tables import write_table
from nucseg.normalize import (
    NormalizeConfig,
    colour_channels,
    detect_category,
    intensity_range,
    normalize_image,
)
from nucseg.selection import RowSelector, balance_weights
from nucseg.targets import TargetConfig, compute_targets

MANIFEST_COLUMNS = [
    "id",
    "source",
    "origin",
    "acquisition",
    "category",
    "height",
    "width",
    "n_nuclei",
    "mean_nucleus_area",
    "sha256_image",
    "sha256_labels",
    "sampling_weight",
    "normalization",
]
# a converted source has no sampling weight and normalisation yet
SOURCE_COLUMNS = MANIFEST_COLUMNS[:-2]
#: Suffix of the images of converted sources and dataset versions (:func:`write_image`).
IMAGE_SUFFIX = ".tif"


@dataclass(frozen=True)
class SourceSpec:
    """A raw data source as named in config ``sources:``."""

    name: str
    format: str
    path: Path
    overlap: str = "larger"  # what to do with overlapping masks: 'larger' or 'error'
    labels_csv: Path | None = None  # kaggle_stage1 only: nuclei from a labels CSV
    crop: tuple[int, int] | None = None  # (width, step): cut images into tiles with nuclei
    frames: tuple[str, ...] | None = None  # ctc only: the frames to use
    min_coverage: float = 0.5  # ctc only: labelled share of the foreground of a full frame

    @classmethod
    def from_config(cls, name: str, spec: dict) -> SourceSpec:
        """From config ``sources.<name>`` (see :class:`nucseg.io.sources.SourceOptions`)."""
        return cls(
            name,
            spec["format"],
            Path(spec["path"]),
            spec.get("overlap", "larger"),
            Path(spec["labels_csv"]) if spec.get("labels_csv") else None,
            (spec["crop"]["width"], spec["crop"]["step"]) if spec.get("crop") else None,
            tuple(str(f) for f in spec["frames"]) if spec.get("frames") is not None else None,
            spec.get("min_coverage", 0.5),
        )

    @property
    def options(self) -> SourceOptions:
        """The reading options of this source."""
        return SourceOptions(self.overlap, self.labels_csv, self.frames, self.min_coverage)


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def read_manifest(path: Path | str) -> pd.DataFrame:
    """Read a manifest TSV with ids as strings."""
    path = Path(path)
    if not path.is_file():
        raise NucsegInputError(f"{path}: manifest not found")
    return pd.read_csv(path, sep="\t", dtype={"id": str, "origin": str, "acquisition": str})


def fold_side_ids(fold_dir: Path | str, side: str) -> list[str]:
    """Ids on ``side`` (``train`` or ``valid``) of a materialised fold, from its split.tsv
    (:func:`nucseg.folds.materialize_fold`)."""
    split = read_manifest(Path(fold_dir) / "split.tsv")
    return split.loc[split.side == side, "id"].tolist()


def training_nucleus_diameter(manifest: pd.DataFrame, train_ids: list[str]) -> float:
    """The typical nucleus diameter in pixels a model learned from: over its training images
    weighted as its crops drew them (pixels x ``sampling_weight``), the median of each
    image's equivalent diameter of its mean nucleus area (``manifest`` indexed by id)."""
    rows = manifest.loc[train_ids]
    diameters = np.sqrt(4 * rows["mean_nucleus_area"].to_numpy(float) / np.pi)
    weights = rows["height"].to_numpy(float) * rows["width"].to_numpy(float)
    if "sampling_weight" in rows.columns:
        weights = weights * rows["sampling_weight"].to_numpy(float)
    order = np.argsort(diameters)
    cumulative = np.cumsum(weights[order])
    return round(float(diameters[order][np.searchsorted(cumulative, cumulative[-1] / 2)]), 1)


def _write_piece(out_dir: Path, image_id: str, image: np.ndarray, labels: np.ndarray) -> dict:
    """Write one image and its labels; return its manifest fields beyond the source ones."""
    labels = labels.astype(np.uint16)
    write_image(image, out_dir / "images" / f"{image_id}{IMAGE_SUFFIX}")
    write_tiff(labels, out_dir / "labels" / f"{image_id}.tif")
    areas = np.bincount(labels.ravel())[1:]
    return {
        "id": image_id,
        "height": image.shape[0],
        "width": image.shape[1],
        "n_nuclei": int(labels.max()),
        "mean_nucleus_area": round(float(areas.mean()), 2) if areas.size else 0.0,
        "sha256_image": _sha256(image),
        "sha256_labels": _sha256(labels),
    }


def convert_source(source: SourceSpec, out_dir: Path | str) -> pd.DataFrame:
    """Read and check one raw source once; write ``images/``, ``labels/`` and ``manifest.tsv``
    (without ``sampling_weight``) under ``out_dir``, shared by every dataset version.

    Sources with ``crop`` are cut into tiles containing nuclei (:func:`nucseg.crops.crop_image`),
    ids ``<id>_r<top>_c<left>``, sharing the original's origin and category.  Raises
    :class:`NucsegInputError` for unknown formats, unreadable files and bad annotations.
    """
    if source.format not in SOURCE_FORMATS:
        raise NucsegInputError(
            f"sources.{source.name}.format: unknown format {source.format!r}; "
            f"expected one of {SOURCE_FORMATS}"
        )
    with atomic_directory(out_dir) as tmp_dir:  # a bad file leaves no partial conversion
        return _convert_entries(source, tmp_dir)


def _convert_entries(source: SourceSpec, out_dir: Path) -> pd.DataFrame:
    rows, origins = [], {}
    for entry in list_source(source.format, source.path, source.options):
        image = read_image(entry.image_path)
        if image.ndim == 3 and image.shape[-1] == 4:
            image = image[..., :3]  # alpha is unused (every Kaggle PNG is RGBA)
        row = {"source": source.name, "origin": entry.origin, "category": detect_category(image)}
        labels = entry.read_labels(image.shape[:2])
        if entry.origin not in origins:  # the first frame of a sequence speaks for it
            origins[entry.origin] = origin_signature(image, labels, row["category"])
        if labels.max() > np.iinfo(np.uint16).max:
            raise NucsegInputError(f"{entry.image_path}: more than 65535 nuclei in one image")
        if source.crop:
            width, step = source.crop
            pieces = [
                (f"{entry.image_id}{c.suffix}", c.image, c.labels)
                for c in crop_image(image, labels, width=width, step=step)
            ]
        else:
            pieces = [(entry.image_id, image, labels)]
        for piece_id, piece_image, piece_labels in pieces:
            rows.append(row | _write_piece(out_dir, piece_id, piece_image, piece_labels))
    origin_table = pd.DataFrame.from_dict(origins, orient="index").sort_index()
    acquisition = cluster_acquisitions(origin_table, source.name)
    for row in rows:
        row["acquisition"] = acquisition[row["origin"]]
    manifest = pd.DataFrame(rows, columns=SOURCE_COLUMNS).sort_values("id", kind="stable")
    write_table(manifest, out_dir / "manifest.tsv")
    return manifest


def assemble_dataset(
    source_dirs: list[Path | str],
    out_dir: Path | str,
    *,
    include: Path | str | None = None,
    exclude: Path | str | None = None,
    balance: str | None = None,
    shares: dict[str, float] | None = None,
    normalize: NormalizeConfig = NormalizeConfig(),
) -> pd.DataFrame:
    """Gather converted sources (:func:`convert_source`) into a dataset version.

    ``include``/``exclude`` are selection CSVs (:mod:`nucseg.selection`): only images
    matching ``include`` (if given) and not matching ``exclude`` are kept.  ``balance``
    names a manifest column whose groups get an equal share of the training crops (equal
    total of pixels x ``sampling_weight``: :func:`nucseg.selection.balance_weights`), or
    shares proportional to ``shares`` (relative weight per group, 1 if not named).  The
    ``normalization`` column records what :func:`normalize_dataset` does to each image under
    ``normalize`` (:meth:`nucseg.normalize.NormalizeConfig.describe`).  Images and
    labels are hardlinked from the sources (no extra disk).  Raises
    :class:`NucsegInputError` for ids that occur in more than one source.
    """
    keep = RowSelector(include) if include else None
    drop = RowSelector(exclude) if exclude else None
    out_dir = Path(out_dir)
    tables, seen = [], {}
    for source_dir in map(Path, source_dirs):
        table = read_manifest(source_dir / "manifest.tsv")
        for image_id, source in zip(table["id"], table["source"], strict=True):
            if image_id in seen:
                raise NucsegInputError(
                    f"{source_dir / 'manifest.tsv'}: image id {image_id} of source {source} "
                    f"also occurs in source {seen[image_id]}"
                )
            seen[image_id] = source
        records = table.to_dict("records")
        chosen = [
            (keep is None or keep.matches(r)) and not (drop and drop.matches(r)) for r in records
        ]
        table = table[chosen]
        for image_id in table["id"]:
            for kind, suffix in (("images", IMAGE_SUFFIX), ("labels", ".tif")):
                name = f"{image_id}{suffix}"
                link_or_copy(source_dir / kind / name, out_dir / kind / name)
        tables.append(table)
    manifest = (
        pd.concat(tables, ignore_index=True).sort_values("id", kind="stable").reset_index(drop=True)
    )
    if manifest.empty:
        raise NucsegInputError(f"{out_dir}: no image left after include/exclude selection")
    pixels = manifest["height"].to_numpy(float) * manifest["width"].to_numpy(float)
    manifest["sampling_weight"] = np.round(balance_weights(manifest, balance, pixels, shares), 6)
    manifest["normalization"] = [normalize.describe(c) for c in manifest["category"]]
    manifest = manifest[MANIFEST_COLUMNS]
    write_table(manifest, out_dir / "manifest.tsv")
    return manifest


def normalize_dataset(
    dataset_dir: Path | str, out_dir: Path | str, config: NormalizeConfig
) -> pd.DataFrame:
    """Write ``<out_dir>/<id>.tif`` normalised images for every row of the version's manifest
    and return per-category intensity statistics (see :func:`intensity_stats`)."""
    dataset_dir = Path(dataset_dir)
    manifest = read_manifest(dataset_dir / "manifest.tsv")
    records = []
    for image_id, category in zip(manifest["id"], manifest["category"], strict=True):
        image = read_image(dataset_dir / "images" / f"{image_id}{IMAGE_SUFFIX}")
        normalized, _ = normalize_image(image, config)
        write_channels(normalized, Path(out_dir) / f"{image_id}.tif")
        black, white = intensity_range(image)
        before = (colour_channels(image).mean(axis=2) - black) / (white - black)
        records.append((category, before, normalized))
    return intensity_stats(records, config)


def write_targets(dataset_dir: Path | str, out_dir: Path | str, config: TargetConfig) -> int:
    """Write ``<out_dir>/<id>.tif``: the ``4 x H x W`` target stack
    (:func:`nucseg.targets.compute_targets`) of every image of a version; return the count."""
    dataset_dir = Path(dataset_dir)
    ids = read_manifest(dataset_dir / "manifest.tsv")["id"]
    for image_id in ids:
        labels = read_tiff(dataset_dir / "labels" / f"{image_id}.tif").astype(np.int32)
        write_channels(compute_targets(labels, config), Path(out_dir) / f"{image_id}.tif")
    return len(ids)


def intensity_stats(
    records: list[tuple[str, np.ndarray, np.ndarray]], config: NormalizeConfig
) -> pd.DataFrame:
    """Per category: image count, mean/std/1st/99th percentile of the gray level before
    (RGB mean in the image's own range, 0 = black and 1 = white: 8-bit 0-255, deeper
    images :func:`nucseg.normalize.intensity_range`) and after normalisation, and the
    method used."""
    rows = []
    for category in sorted({r[0] for r in records}):
        stages = {"before": [], "after": []}
        for name, before, after in records:
            if name == category:
                stages["before"].append(before.ravel())
                stages["after"].append(after.ravel())
        row = {
            "category": category,
            "n_images": len(stages["before"]),
            "method": config.method,
            "clahe": config.clahe,
        }
        for stage, arrays in stages.items():
            values = np.concatenate(arrays)
            p1, p99 = np.percentile(values, [1, 99])
            row |= {
                f"{stage}_mean": round(float(values.mean()), 4),
                f"{stage}_std": round(float(values.std()), 4),
                f"{stage}_p1": round(float(p1), 4),
                f"{stage}_p99": round(float(p99), 4),
            }
        rows.append(row)
    return pd.DataFrame(rows)


def prepare_test_set(
    test_roots: dict[str, Path | str], out_dir: Path | str, config: NormalizeConfig
) -> pd.DataFrame:
    """Normalise one or more named stage1_test folders (``{source: folder}``) into
    ``<out_dir>/normalized/`` plus ``manifest.tsv`` (id, source, category, size,
    normalisation); an id in two folders is an error."""
    out_dir = Path(out_dir)
    rows, seen = [], {}
    for source, test_root in test_roots.items():
        for entry in list_stage1(test_root, require_masks=False):
            if entry.image_id in seen:
                raise NucsegInputError(
                    f"{entry.image_path}: image id {entry.image_id} is also in test set "
                    f"{seen[entry.image_id]!r}; ids must be unique across test_images"
                )
            seen[entry.image_id] = source
            image = read_image(entry.image_path)
            normalized, category = normalize_image(image, config)
            write_channels(normalized, out_dir / "normalized" / f"{entry.image_id}.tif")
            rows.append(
                {
                    "id": entry.image_id,
                    "source": source,
                    "category": category,
                    "height": normalized.shape[1],
                    "width": normalized.shape[2],
                    "normalization": config.describe(category),
                }
            )
    manifest = pd.DataFrame(rows).sort_values("id", kind="stable")
    write_table(manifest, out_dir / "manifest.tsv")
    return manifest


def load_normalized(folder: Path | str, ids: list[str]) -> dict[str, np.ndarray]:
    """Load normalised float32 ``C x H x W`` images by id."""
    return {image_id: read_channels(Path(folder) / f"{image_id}.tif") for image_id in ids}
