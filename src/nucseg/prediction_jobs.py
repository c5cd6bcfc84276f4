"""The workflow's prediction jobs (rules ``predict_shard`` and ``predict_validation``):
one model loaded once per job predicts a shard of the test images or a fold's validation
images through the engine of :mod:`nucseg.predict` and writes float16 maps keyed by id."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from nucseg.datasets import IMAGE_SUFFIX, fold_side_ids, load_normalized, read_manifest
from nucseg.io.arrays import save_arrays
from nucseg.io.images import read_image
from nucseg.io.kaggle import list_stage1
from nucseg.normalize import NormalizeConfig, normalize_image
from nucseg.predict import (
    PredictConfig,
    load_for_prediction,
    predict_probability,
    reads_two_ways,
    settle_reading,
)

log = logging.getLogger(__name__)


def inputs_as_trained(
    trained_with: NormalizeConfig,
    prepared_with: NormalizeConfig,
    normalized_dir: Path | str,
    image_paths: dict[str, Path],
) -> dict[str, np.ndarray]:
    """A model's input images by id: the prepared ones in ``normalized_dir`` when they were
    normalised as the model was trained (``prepared_with == trained_with``), else the source
    images of ``image_paths`` normalised the model's way (a model of a dataset version with
    its own ``normalize``, or a shipped one trained otherwise)."""
    ids = sorted(image_paths)
    if trained_with == prepared_with:
        return load_normalized(normalized_dir, ids)
    log.info("normalising %d images as the model was trained: %s", len(ids), trained_with)
    return {i: normalize_image(read_image(image_paths[i]), trained_with)[0] for i in ids}


def settle_readings(
    model,
    images: dict[str, np.ndarray],
    categories: dict[str, str],
    image_paths: dict[str, Path],
    normalize: NormalizeConfig,
    device,
    config: PredictConfig,
) -> dict[str, str]:
    """The images the dataset called brightfield or fluorescence, read again from
    ``image_paths`` and settled by the model where they can be read two ways
    (:func:`nucseg.predict.settle_reading`: brightfield as fluorescence, colour
    fluorescence as its blue plane): replaced in ``images`` by the reading it keeps.
    Returns every image's category."""
    settled = dict(categories)
    for image_id in images:
        category = categories[image_id]
        if not reads_two_ways(category, config):
            continue
        images[image_id], settled[image_id] = settle_reading(
            model,
            read_image(image_paths[image_id]),
            (images[image_id], category),
            normalize,
            device,
            config,
        )
    return settled


def shard_ids(ids: list[str], shard: int, n_shards: int) -> list[str]:
    """The ids of shard ``shard`` of ``n_shards``: every ``n_shards``-th of the sorted ids."""
    return sorted(ids)[shard::n_shards]


def predict_shard(
    model_path: Path | str,
    manifest_path: Path | str,
    normalized_dir: Path | str,
    out_path: Path | str,
    *,
    shard: int,
    n_shards: int,
    test_roots: list[Path | str],
    prepared_with: NormalizeConfig = NormalizeConfig(),
    config: PredictConfig = PredictConfig(),
    threads: int = 1,
    device: str = "auto",
) -> None:
    """Predict one shard of a prepared test set (its stage1_test folders ``test_roots``,
    normalised ``prepared_with`` into ``normalized_dir``); write float16 ``K x H x W`` maps
    keyed by image id.  A model trained with another normalisation gets the source images
    normalised its way (:func:`inputs_as_trained`)."""
    model, trained_with, torch_device, config = load_for_prediction(
        model_path, config, threads, device
    )
    manifest = read_manifest(manifest_path)
    categories = dict(manifest[["id", "category"]].values)
    ids = shard_ids(manifest["id"].tolist(), shard, n_shards)
    start = time.perf_counter()
    entries = [e for root in test_roots for e in list_stage1(root, require_masks=False)]
    sources = {e.image_id: e.image_path for e in entries}
    paths = {i: sources[i] for i in ids}
    images = inputs_as_trained(trained_with, prepared_with, normalized_dir, paths)
    categories = settle_readings(
        model, images, categories, paths, trained_with, torch_device, config
    )
    maps = {
        i: predict_probability(model, images[i], torch_device, config, categories[i]).astype(
            np.float16
        )
        for i in ids
    }
    save_arrays(out_path, maps)
    log.info(
        "shard %d/%d: %d images, %d views, %.1f s",
        shard,
        n_shards,
        len(ids),
        len(config.views),
        time.perf_counter() - start,
    )


def predict_validation(
    model_path: Path | str,
    fold_dir: Path | str,
    manifest_path: Path | str,
    out_path: Path | str,
    *,
    prepared_with: NormalizeConfig = NormalizeConfig(),
    config: PredictConfig = PredictConfig(),
    threads: int = 1,
    device: str = "auto",
) -> None:
    """Predict the validation images of a fold (normalised ``prepared_with``; their
    categories from the dataset's ``manifest_path``) with one checkpoint, as at test time;
    write float16 ``K x H x W`` maps keyed by image id (every
    tuning of that model reads them)."""
    model, trained_with, torch_device, config = load_for_prediction(
        model_path, config, threads, device
    )
    valid = Path(fold_dir) / "valid"
    paths = {i: valid / "images" / f"{i}{IMAGE_SUFFIX}" for i in fold_side_ids(fold_dir, "valid")}
    images = inputs_as_trained(trained_with, prepared_with, valid / "normalized", paths)
    categories = dict(read_manifest(manifest_path)[["id", "category"]].values)
    categories = settle_readings(
        model, images, categories, paths, trained_with, torch_device, config
    )
    start, maps = time.perf_counter(), {}
    for done, (image_id, image) in enumerate(images.items(), start=1):
        maps[image_id] = predict_probability(
            model, image, torch_device, config, categories[image_id]
        )
        maps[image_id] = maps[image_id].astype(np.float16)
        if done % max(1, len(images) // 10) == 0 or done == len(images):
            log.info(
                "predicted %d/%d validation images in %.1f s",
                done,
                len(images),
                time.perf_counter() - start,
            )
    save_arrays(out_path, maps)
