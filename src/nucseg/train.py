"""Training loop: seeded, deterministic on CPU, CUDA with AMP when present.

One epoch is ``steps_per_epoch`` batches of random augmented crops.  After each epoch the
model is evaluated on the validation images (whole images, padded): loss and mean DSB score
after instance separation.  The learning rate drops by ``lr_factor`` after ``lr_patience``
epochs without a lower validation loss; the checkpoint with the best validation DSB score
is kept.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nucseg.augment import sample_batch
from nucseg.datasets import load_normalized, read_manifest
from nucseg.io.images import read_channels, read_tiff
from nucseg.io.tables import write_table
from nucseg.losses import bce_soft_iou_loss
from nucseg.metrics import dsb_score
from nucseg.models import ModelConfig, build_model, count_parameters
from nucseg.postprocess import PostprocessConfig, instances_from_probability
from nucseg.predict import predict_probability, save_checkpoint, select_device

log = logging.getLogger(__name__)

LOG_COLUMNS = ["epoch", "train_loss", "valid_loss", "valid_dsb", "lr", "seconds", "data_seconds"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (config ``models.<name>.train``)."""

    epochs: int = 12
    steps_per_epoch: int = 40
    batch_size: int = 8
    crop: int = 128
    learning_rate: float = 1e-3
    lr_patience: int = 3
    lr_factor: float = 0.2
    early_stop: int = 0  # epochs without improvement before stopping; 0 = never
    iou_weight: float = 1.0
    seed: int = 0
    device: str = "auto"


@dataclass
class TrainData:
    """Normalised ``C x H x W`` images and ``K x H x W`` targets, split into train and
    validation lists; ``valid_labels`` are the validation instance labels."""

    train_images: list[np.ndarray]
    train_targets: list[np.ndarray]
    valid_images: list[np.ndarray]
    valid_targets: list[np.ndarray]
    valid_labels: list[np.ndarray]
    train_weights: list[float] | None = None  # per-image sampling weights (manifest)


def seed_everything(seed: int) -> None:
    """Seed python, numpy's legacy global state and torch; make torch deterministic."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds the legacy global state third-party code may use
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _validate(
    model, data: TrainData, device, postprocess: PostprocessConfig, iou_weight: float
) -> tuple[float, float]:
    if not data.valid_images:
        return float("nan"), float("nan")
    model.eval()
    losses, scores = [], []
    for image, target, labels in zip(
        data.valid_images, data.valid_targets, data.valid_labels, strict=True
    ):
        prob = predict_probability(model, image, device)
        logit = torch.logit(torch.from_numpy(prob).clamp(1e-6, 1 - 1e-6))[None]
        losses.append(
            float(
                bce_soft_iou_loss(
                    logit, torch.from_numpy(target.astype(np.float32))[None], iou_weight
                )
            )
        )
        scores.append(dsb_score(labels, instances_from_probability(prob[0], postprocess)))
    model.train()
    return float(np.mean(losses)), float(np.mean(scores))


def train_model(
    data: TrainData,
    net: ModelConfig,
    config: TrainConfig,
    out_model: Path | str,
    out_log: Path | str,
    threads: int = 1,
    postprocess: PostprocessConfig | None = None,
) -> pd.DataFrame:
    """Train; write the best checkpoint to ``out_model`` and the epoch log TSV to ``out_log``."""
    postprocess = postprocess or PostprocessConfig()
    seed_everything(config.seed)
    torch.set_num_threads(max(1, threads))
    device = select_device(config.device)
    rng = np.random.default_rng(config.seed)
    # the input channels follow the data (1, or 3 for normalize.method 'rgb')
    net = replace(net, in_channels=int(data.train_images[0].shape[0]))
    model = build_model(net).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    log.info(
        "model %s: %d parameters, device %s, %d threads",
        net.arch,
        count_parameters(model),
        device,
        threads,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.lr_factor, patience=config.lr_patience
    )
    scaler = torch.amp.GradScaler(enabled=device.type == "cuda")
    images = data.train_images
    # crops drawn uniformly over pixels, times each image's sampling weight (balancing)
    weights = np.array([i[0].size for i in images], float)
    if data.train_weights is not None:
        weights *= np.asarray(data.train_weights, float)
    weights /= weights.sum()
    rows, best_score, best_epoch = [], -np.inf, 0
    for epoch in range(1, config.epochs + 1):
        start, data_seconds, losses = time.perf_counter(), 0.0, []
        model.train()
        for _step in range(config.steps_per_epoch):
            tick = time.perf_counter()
            batch_images, batch_targets = sample_batch(
                rng, images, data.train_targets, weights, config.batch_size, config.crop
            )
            inputs, targets = (
                torch.from_numpy(batch_images).to(device),
                torch.from_numpy(batch_targets).to(device),
            )
            data_seconds += time.perf_counter() - tick
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                loss = bce_soft_iou_loss(model(inputs).float(), targets, config.iou_weight)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(loss.item())
        valid_loss, valid_dsb = _validate(model, data, device, postprocess, config.iou_weight)
        # the LR follows the smooth validation loss; the kept checkpoint, the DSB score
        scheduler.step(valid_loss if np.isfinite(valid_loss) else float(np.mean(losses)))
        score = valid_dsb if np.isfinite(valid_dsb) else -float(np.mean(losses))
        if score > best_score:
            best_score, best_epoch = score, epoch
            save_checkpoint(model, out_model, {"epoch": epoch, "valid_dsb": valid_dsb})
        rows.append(
            {
                "epoch": epoch,
                "train_loss": round(float(np.mean(losses)), 5),
                "valid_loss": round(valid_loss, 5),
                "valid_dsb": round(valid_dsb, 5),
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": round(time.perf_counter() - start, 2),
                "data_seconds": round(data_seconds, 3),
            }
        )
        log.info(
            "epoch %d/%d %s",
            epoch,
            config.epochs,
            " ".join(f"{k}={v}" for k, v in rows[-1].items() if k != "epoch"),
        )
        if config.early_stop and epoch - best_epoch >= config.early_stop:
            log.info("early stop: no improvement for %d epochs", config.early_stop)
            break
    table = pd.DataFrame(rows, columns=LOG_COLUMNS)
    write_table(table, out_log)
    return table


def load_train_data(
    manifest_path: Path | str, fold_dir: Path | str, target_channels: int = 1
) -> TrainData:
    """Load a materialised fold (:func:`nucseg.folds.materialize_fold`): normalised images,
    the first ``target_channels`` cached targets (:data:`nucseg.targets.TARGET_CHANNELS`)
    and labels per side, and each training image's sampling weight."""

    fold_dir = Path(fold_dir)
    split = read_manifest(fold_dir / "split.tsv")
    train_ids = split.loc[split.side == "train", "id"].tolist()
    valid_ids = split.loc[split.side == "valid", "id"].tolist()
    log.info("%d training and %d validation images", len(train_ids), len(valid_ids))

    def load(
        side: str, ids: list[str]
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        images = load_normalized(fold_dir / side / "normalized", ids)
        labels = [read_tiff(fold_dir / side / "labels" / f"{i}.tif").astype(np.int32) for i in ids]
        targets = [
            read_channels(fold_dir / side / "targets" / f"{i}.tif")[:target_channels] for i in ids
        ]
        return [images[i] for i in ids], targets, labels

    train_images, train_targets, _ = load("train", train_ids)
    valid_images, valid_targets, valid_labels = load("valid", valid_ids)
    weight_of = read_manifest(manifest_path).set_index("id")["sampling_weight"]
    weights = [float(weight_of[i]) for i in train_ids]
    return TrainData(
        train_images, train_targets, valid_images, valid_targets, valid_labels, weights
    )
