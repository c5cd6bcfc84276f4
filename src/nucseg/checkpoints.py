"""Checkpoints: the device a network runs on, saving and reading a network's weights with
its config and what training recorded, and rebuilding the network from them."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import torch

from nucseg.errors import NucsegInputError
from nucseg.io.atomic import atomic_path
from nucseg.models import ModelConfig, SegmentationNet, build_model
from nucseg.normalize import NormalizeConfig
from nucseg.precision import channels_last

log = logging.getLogger(__name__)


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


def read_checkpoint(path: Path | str) -> dict:
    """The payload of a checkpoint written by :func:`save_checkpoint` (network config,
    weights, what training recorded), loaded with ``weights_only=True``: no pickled code runs.
    Raises :class:`NucsegInputError` for a missing, corrupt or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise NucsegInputError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types (UnpicklingError, RuntimeError, ...)
        raise NucsegInputError(
            f"{path}: corrupt or unreadable checkpoint ({str(error)[:160]}); "
            "retrain the model or copy the file again"
        ) from None
    if not isinstance(payload, dict) or not {"net", "state_dict"} <= payload.keys():
        raise NucsegInputError(f"{path}: not a nucseg checkpoint (no 'net' and 'state_dict')")
    return payload


def checkpoint_normalization(payload: dict, path: Path | str) -> NormalizeConfig:
    """The normalisation the checkpoint at ``path`` (its ``payload``) was trained with
    (default settings for checkpoints that do not record it)."""
    recorded = payload.get("normalize")
    if recorded is None:
        log.warning("%s: no normalisation recorded; using the defaults", path)
        return NormalizeConfig()
    return NormalizeConfig(**recorded)


def load_model(path: Path | str, device: torch.device) -> SegmentationNet:
    """The network of a checkpoint (:func:`read_checkpoint`), in eval mode on ``device``."""
    return network_of(read_checkpoint(path), path, device)


def network_of(payload: dict, path: Path | str, device: torch.device) -> SegmentationNet:
    """The network of a checkpoint's payload read from ``path``, in eval mode on ``device``."""
    try:
        # the checkpoint holds every weight: do not read the encoder's initial weights again
        model = build_model(replace(ModelConfig(**payload["net"]), encoder_weights=None))
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, KeyError, RuntimeError, NucsegInputError) as error:
        raise NucsegInputError(
            f"{path}: the weights do not fit the network the checkpoint describes "
            f"({str(error)[:160]}); it was written by other code or edited"
        ) from None
    return channels_last(model.to(device).eval())
