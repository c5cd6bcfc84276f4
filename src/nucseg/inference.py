"""Trained models (or an ensemble of them) on arbitrary image files, outside Snakemake.

Used by ``nucseg predict``.  Each image is read in any supported format, normalised the way
the models' training data was (recorded in their checkpoints), predicted by every model
(each loaded once), averaged, separated into instances and written as
``<out>/<stem>.tif`` (instance labels, 16-bit unless more nuclei: they open in Fiji and
napari as they are) plus one ``<out>/submission.csv`` (``ImageId`` = file stem, RLE 1-based
column-major, see :mod:`nucseg.rle`), ``<out>/measurements.csv`` (one row per nucleus) and
``<out>/summary.csv`` (one row per image), see :mod:`nucseg.measure`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from nucseg.ensemble import weighted_mean
from nucseg.errors import NucsegInputError
from nucseg.io.images import read_image, write_tiff
from nucseg.io.kaggle import IMAGE_SUFFIXES
from nucseg.io.tables import write_table
from nucseg.measure import measure_instances
from nucseg.normalize import normalize_image
from nucseg.postprocess import PostprocessConfig, instances_from_probability
from nucseg.predict import (
    PredictConfig,
    checkpoint_normalization,
    network_of,
    predict_probability,
    read_checkpoint,
    select_device,
)
from nucseg.submission import write_submission

log = logging.getLogger(__name__)


def checkpoint_path(model: Path | str) -> Path:
    """A checkpoint file, or a model folder's ``model.pt``."""
    model = Path(model)
    return model / "model.pt" if model.is_dir() else model


def image_files(paths: list[Path | str]) -> list[Path]:
    """The image files named by ``paths``: files as given; a folder gives the images in it
    (sorted), or, when it has none, the ``<id>/images/<id>.*`` images of Kaggle's layout."""
    files = []
    for path in map(Path, paths):
        if not path.is_dir():
            files.append(path)
            continue
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            found = sorted(p for p in path.glob("*/images/*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise NucsegInputError(
                f"{path}: no images in this folder (expected {', '.join(IMAGE_SUFFIXES)} files "
                "or Kaggle's <id>/images/<id>.png)"
            )
        files.extend(found)
    return files


def _model_folder_file(models: list[Path | str], name: str) -> Path | None:
    """File ``name`` beside the checkpoint of a single model (a model folder's), if any."""
    if len(models) != 1:
        return None
    candidate = checkpoint_path(models[0]).parent / name
    return candidate if candidate.is_file() else None


def shipped_predict_settings(models: list[Path | str]) -> dict:
    """A single model folder's ``predict.json`` (the test-time views, scales and tile size
    its thresholds were tuned with), or ``{}``."""
    path = _model_folder_file(models, "predict.json")
    if path is None:
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise NucsegInputError(f"{path}: not a JSON file ({error})") from None


def shipped_thresholds(models: list[Path | str]) -> Path | None:
    """A single model folder's ``thresholds.json`` (tuned on its validation fold), if any."""
    return _model_folder_file(models, "thresholds.json")


def predict_images(
    models: list[Path | str],
    images: list[Path | str],
    out_dir: Path | str,
    *,
    weights: list[float] | None = None,
    vote: bool = False,
    predict: PredictConfig = PredictConfig(),
    postprocess: PostprocessConfig = PostprocessConfig(),
    device: str = "auto",
) -> dict[str, int]:
    """Segment every image; return the number of nuclei found per image id (file stem)."""
    out_dir = Path(out_dir)
    stems = [Path(p).stem for p in images]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise NucsegInputError(f"two input images share the id {duplicates[0]!r} (file stem)")
    paths = [checkpoint_path(m) for m in models]
    torch_device = select_device(device)
    payloads = {p: read_checkpoint(p) for p in paths}  # each file read once
    networks = [network_of(payloads[p], p, torch_device) for p in paths]
    normalizations = {p: checkpoint_normalization(payloads[p], p) for p in paths}
    if len(set(normalizations.values())) > 1:
        raise NucsegInputError("the models were trained on differently normalised images")
    normalize = normalizations[paths[0]]
    instances, counts = {}, {}
    for stem, image_path in zip(stems, images, strict=True):
        pixels, _category = normalize_image(read_image(image_path), normalize)
        maps = [{stem: predict_probability(n, pixels, torch_device, predict)} for n in networks]
        labels = instances_from_probability(weighted_mean(maps, weights, vote)[stem], postprocess)
        dtype = np.uint16 if labels.max() < 2**16 else np.uint32
        write_tiff(labels.astype(dtype), out_dir / f"{stem}.tif")
        instances[stem], counts[stem] = labels, int(labels.max())
        log.info("%s: %d nuclei", image_path, counts[stem])
    write_submission(instances, out_dir / "submission.csv")
    table, summary = measure_instances(instances, dict(zip(stems, map(Path, images), strict=True)))
    write_table(table, out_dir / "measurements.csv", sep=",")
    write_table(summary, out_dir / "summary.csv", sep=",")
    return counts
