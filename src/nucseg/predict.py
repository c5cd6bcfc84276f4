"""Probability maps from a trained network, at any image size, with test-time augmentation."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from nucseg.augment import dihedral, inverse_dihedral
from nucseg.datasets import load_normalized, read_manifest
from nucseg.errors import NucsegInputError
from nucseg.io.arrays import save_arrays
from nucseg.io.atomic import atomic_path
from nucseg.models import ModelConfig, SegmentationNet, build_model


def select_device(preferred: str = "auto") -> torch.device:
    """``cuda`` when available (or asked for), else ``cpu``."""
    if preferred == "cpu" or (preferred == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise NucsegInputError("device: 'cuda' was requested but no CUDA device is available")
    return torch.device("cuda")


def save_checkpoint(model: SegmentationNet, path: Path | str, extra: dict | None = None) -> None:
    """Save weights and network config in a form :func:`load_model` reads with ``weights_only``."""

    payload = {"net": model.config.to_dict(), "state_dict": model.state_dict(), **(extra or {})}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_model(path: Path | str, device: torch.device) -> SegmentationNet:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no pickle)."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
        # the checkpoint holds every weight: do not read the encoder's initial weights again
        model = build_model(replace(ModelConfig(**payload["net"]), encoder_weights=None))
        model.load_state_dict(payload["state_dict"])
    except FileNotFoundError:
        raise NucsegInputError(f"{path}: checkpoint not found") from None
    except Exception as error:  # torch raises many types (UnpicklingError, RuntimeError, ...)
        raise NucsegInputError(
            f"{path}: corrupt or incompatible checkpoint ({str(error)[:200]})"
        ) from None
    return model.to(device).eval()


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Pad the bottom/right of ``... x H x W`` to multiples of ``multiple`` (reflect, or edge
    when the image is too small to reflect)."""
    height, width = image.shape[-2:]
    pad = ((0, 0),) * (image.ndim - 2) + ((0, -height % multiple), (0, -width % multiple))
    mode = "reflect" if pad[-2][1] < height and pad[-1][1] < width else "edge"
    return np.pad(image, pad, mode=mode)


@torch.inference_mode()
def predict_probability(
    model: SegmentationNet, image: np.ndarray, device: torch.device, views: tuple[int, ...] = (0,)
) -> np.ndarray:
    """Sigmoid probabilities ``K x H x W`` float32 (one per output head) for a normalised
    ``C x H x W`` image.

    ``views`` are dihedral views (0..7, see :func:`nucseg.augment.dihedral`); their
    de-augmented probabilities are averaged (test-time augmentation).  Views of equal shape
    run as one batch.
    """
    height, width = image.shape[-2:]
    padded = pad_to_multiple(image.astype(np.float32), model.multiple)
    total = np.zeros((len(model.config.heads), *padded.shape[-2:]), np.float32)
    transposed = [v for v in views if (v >= 4) != (v % 2 == 1)]
    for group in ([v for v in views if v not in transposed], transposed):
        if not group:
            continue
        batch = np.stack([dihedral(padded, v) for v in group])
        tensor = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            prob = torch.sigmoid(model(tensor).masks.float()).cpu().numpy()
        for v, p in zip(group, prob, strict=True):
            total += inverse_dihedral(p, v)
    return (total / len(views))[:, :height, :width]


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
    views: tuple[int, ...] = (0,),
    threads: int = 1,
    device: str = "auto",
) -> None:
    """Predict one shard of a prepared test set; write float16 ``K x H x W`` maps keyed by
    image id."""

    torch.set_num_threads(max(1, threads))
    torch_device = select_device(device)
    model = load_model(model_path, torch_device)
    ids = shard_ids(read_manifest(manifest_path)["id"].tolist(), shard, n_shards)
    start = time.perf_counter()
    images = load_normalized(normalized_dir, ids)
    maps = {
        i: predict_probability(model, images[i], torch_device, views).astype(np.float16)
        for i in ids
    }
    save_arrays(out_path, maps)
    logging.getLogger(__name__).info(
        "shard %d/%d: %d images, %d views, %.1f s",
        shard,
        n_shards,
        len(ids),
        len(views),
        time.perf_counter() - start,
    )
