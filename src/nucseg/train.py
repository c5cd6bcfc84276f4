"""Training loop: seeded, bit-reproducible and resumable on CPU, CUDA with AMP when present.

One epoch is ``steps_per_epoch`` batches of random crops, augmented on the fly
(:mod:`nucseg.augment`).  After each epoch the model is evaluated on the validation images
(whole images, padded): loss and DSB score after instance separation, balanced like
tuning's (per acquisition, then per category, then over categories:
:func:`nucseg.metrics.balanced_mean`; a fold of whole acquisitions is often mostly one of
them, and the plain mean would pick the epoch that one acquisition likes).  Learning-rate
schedule (``schedule``): ``plateau`` drops it by ``lr_factor`` after ``lr_patience`` epochs
without a lower validation loss; ``cosine`` anneals it at every step from ``learning_rate``
to ``learning_rate * lr_factor`` over the whole run (half a cosine), the usual way to settle
a noisy run or to fine-tune.  The weights with the best validation DSB score are kept
(a fine-tune with ``init_share``: blended with those it started from).

Resuming: at the end of every epoch the complete training state (weights, optimiser,
scheduler, every random generator, the log so far) is written atomically to
``<checkpoints>/last.pt`` and the best weights to ``<checkpoints>/best.pt``.  A new run with
the same settings continues from there and ends with the same weights as an uninterrupted
run; a run with other settings starts afresh.  Snakemake never deletes that folder (it is
not a declared output), so a killed job loses at most one epoch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nucseg.augment import AugmentConfig, augment_batch, sample_crops
from nucseg.checkpoints import read_checkpoint, save_checkpoint, select_device
from nucseg.datasets import (
    fold_side_ids,
    load_normalized,
    read_manifest,
    training_nucleus_diameter,
)
from nucseg.errors import NucsegInputError
from nucseg.io.atomic import atomic_path
from nucseg.io.images import read_channels, read_tiff
from nucseg.io.tables import write_table
from nucseg.losses import LossConfig, segmentation_loss
from nucseg.metrics import balanced_mean, dsb_score
from nucseg.models import ModelConfig, build_model, count_parameters
from nucseg.normalize import NormalizeConfig
from nucseg.plots import plot_learning_curve
from nucseg.postprocess import PostprocessConfig, instances_from_probability
from nucseg.precision import autocast, autocast_dtype, channels_last, precision_name
from nucseg.predict import pad_to_multiple
from nucseg.targets import TARGET_CHANNELS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (config ``models.<name>.train``).

    ``max_seconds`` (0 = off) stops after the epoch that crosses a wall-time budget; it makes
    the epoch count depend on the machine, so it is meant for benchmarks, not pipelines.
    ``precision``: autocast dtype of the forward pass (:mod:`nucseg.precision`); weights,
    optimiser and losses stay float32.  ``compile``: the training steps run the network
    through ``torch.compile`` (inductor: fused kernels, a one-off compilation of ~30-60 s;
    validation stays eager); measured x1.12 the images per second at width 36, x0.99 at
    width 32 (docs/benchmarks.md).  ``init_share`` (fine-tunes only, 0 = off): the model
    written is the best epoch's weights blended with the ``init`` weights training started
    from, ``init_share`` of the latter (:func:`blend_weights`), validated once more; the
    checkpoints keep the fine-tuned weights.
    """

    epochs: int = 12
    steps_per_epoch: int = 40
    batch_size: int = 8
    crop: int = 128
    learning_rate: float = 1e-3
    lr_patience: int = 3
    lr_factor: float = 0.2
    schedule: str = "plateau"  # plateau | cosine (module docstring)
    early_stop: int = 0  # epochs without improvement before stopping; 0 = never
    seed: int = 0
    device: str = "auto"
    max_seconds: float = 0.0
    precision: str = "auto"  # auto | fp32 | bf16 (nucseg.precision)
    compile: bool = False
    init_share: float = 0.0  # fine-tunes: the init weights' share in the written model


@dataclass(frozen=True)
class TrainPaths:
    """Where a training run writes: best and last weights, the epoch log TSV, the
    learning-curve PNG, and the resumable state folder (not a Snakemake output)."""

    model: Path
    last: Path
    log: Path
    curve: Path
    checkpoints: Path

    @classmethod
    def in_folder(cls, folder: Path | str) -> TrainPaths:
        folder = Path(folder)
        return cls(
            folder / "model.pt",
            folder / "last.pt",
            folder / "train_log.tsv",
            folder / "learning_curve.png",
            folder / "checkpoints",
        )

    @classmethod
    def of_rule(cls, outputs, checkpoints: Path | str) -> TrainPaths:
        """The paths of a training rule whose named outputs are ``model``, ``last``,
        ``log_table`` and ``curve`` (the workflow's convention), with its state folder."""
        return cls(
            Path(outputs.model),
            Path(outputs.last),
            Path(outputs.log_table),
            Path(outputs.curve),
            Path(checkpoints),
        )


@dataclass
class TrainData:
    """Normalised ``C x H x W`` images and ``(K + 1) x H x W`` targets (the ``K`` head
    targets, then the pixel weight map), split into train and validation lists;
    ``valid_labels`` are the validation instance labels.  ``valid_groups``: each validation
    image's ``(category, acquisition)``, by which its score is balanced
    (:func:`nucseg.metrics.balanced_mean`); without them the score is the images' mean."""

    train_images: list[np.ndarray]
    train_targets: list[np.ndarray]
    valid_images: list[np.ndarray]
    valid_targets: list[np.ndarray]
    valid_labels: list[np.ndarray]
    train_weights: list[float] | None = None  # per-image sampling weights (manifest)
    valid_groups: list[tuple[str, str]] | None = None
    nucleus_diameter: float | None = None  # the training side's typical nucleus, pixels

    def balanced_validation(self, scores: list[float]) -> float:
        """The validation score of per-image ``scores``: balanced over ``valid_groups``
        (acquisitions, then categories), else their mean."""
        if self.valid_groups is None:
            return float(np.mean(scores))
        categories = {i: group[0] for i, group in enumerate(self.valid_groups)}
        acquisitions = {i: group[1] for i, group in enumerate(self.valid_groups)}
        return float(balanced_mean(dict(enumerate(scores)), categories, acquisitions))

    @classmethod
    def pick(cls, images, targets, truths, train, valid) -> TrainData:
        """The images, targets and validation ground truths at the ``train`` and ``valid``
        indices of sequences (or mappings) indexed alike."""
        return cls(
            [images[i] for i in train],
            [targets[i] for i in train],
            [images[i] for i in valid],
            [targets[i] for i in valid],
            [truths[i] for i in valid],
        )


@dataclass(frozen=True)
class ValidationScore:
    """How training scores a validation image: ``score(probabilities, presence, truth)``
    with the sigmoid maps ``K x H x W``, the presence probability (or None) and the image's
    ground truth; higher is better. ``name`` makes the log column ``valid_<name>``."""

    name: str
    score: Callable[[np.ndarray, float | None, np.ndarray], float]


def dsb_validation(postprocess: PostprocessConfig = PostprocessConfig()) -> ValidationScore:
    """Nuclei: the DSB score of the instances post-processing separates (truth: labels)."""

    def score(prob: np.ndarray, _presence, labels: np.ndarray) -> float:
        return dsb_score(labels, instances_from_probability(prob, postprocess))

    return ValidationScore("dsb", score)


def log_columns(heads: tuple[str, ...], presence: bool, score_name: str = "dsb") -> list[str]:
    """Columns of the epoch log: totals, one loss per head (and presence), score, timing."""
    parts = [f"loss_{h}" for h in heads] + (["loss_presence"] if presence else [])
    return [
        "epoch",
        "train_loss",
        *parts,
        "valid_loss",
        f"valid_{score_name}",
        "lr",
        "seconds",
        "data_seconds",
    ]


def seed_everything(seed: int) -> None:
    """Seed python, numpy's legacy global state and torch; make torch deterministic."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds the legacy global state third-party code may use
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


@torch.inference_mode()
def _validate(
    model, data: TrainData, device, dtype, loss: LossConfig, validation: ValidationScore
) -> tuple[float, float]:
    if not data.valid_images:
        return float("nan"), float("nan")
    model.eval()
    losses, scores = [], []
    for image, target, labels in zip(
        data.valid_images, data.valid_targets, data.valid_labels, strict=True
    ):
        height, width = image.shape[-2:]
        padded = torch.from_numpy(pad_to_multiple(image, model.multiple))[None].to(device)
        with autocast(device, dtype):
            output = model(channels_last(padded)).float32()
        output = output._replace(masks=output.masks[..., :height, :width])
        total, _ = segmentation_loss(
            output, torch.from_numpy(target)[None].to(device), model.config.heads, loss
        )
        losses.append(float(total))
        prob = torch.sigmoid(output.masks[0]).cpu().numpy()
        presence = None if output.presence is None else float(torch.sigmoid(output.presence[0]))
        scores.append(validation.score(prob, presence, labels))
    model.train()
    return float(np.mean(losses)), data.balanced_validation(scores)


def _fingerprint(*settings) -> str:
    """Hash of everything that determines a run, to refuse resuming someone else's state.
    Dataclass fields at their defaults are left out, so that a new option (off by default)
    does not orphan the runs in progress."""
    text = json.dumps(
        [_changed_fields(s) if is_dataclass(s) else s for s in settings],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _changed_fields(settings) -> dict:
    return {
        f.name: getattr(settings, f.name)
        for f in fields(settings)
        if getattr(settings, f.name) != f.default
    }


class _Progress:
    """A progress bar on a terminal; otherwise a plain log line every quarter epoch."""

    def __init__(self, epochs: int, steps: int):
        self.epochs, self.steps = epochs, steps
        self.tty = sys.stderr.isatty()

    def update(self, epoch: int, step: int, loss: float) -> None:
        if self.tty:
            done = int(30 * step / self.steps)
            print(
                f"\repoch {epoch}/{self.epochs} [{'#' * done}{'.' * (30 - done)}] loss {loss:.4f}",
                end="",
                file=sys.stderr,
                flush=True,
            )
            if step == self.steps:
                print(file=sys.stderr)
        elif step % max(1, self.steps // 4) == 0:
            log.info("epoch %d/%d step %d/%d loss %.4f", epoch, self.epochs, step, self.steps, loss)


@dataclass
class TrainingState:
    """Everything a run changes as it goes, saved after every epoch so that a resumed run
    ends bit-identical to an uninterrupted one: the network, optimiser, schedulers, both
    random generators (crops: numpy; augmentation: torch), the epoch log and the best epoch."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: torch.amp.GradScaler
    rng: np.random.Generator
    augment_rng: torch.Generator
    rows: list = field(default_factory=list)
    best_score: float = -np.inf
    best_epoch: int = 0
    epoch: int = 0  # the last finished epoch
    # the network as training steps call it: the model, or it compiled (not saved)
    forward: Callable | None = None

    @classmethod
    def start(cls, model: torch.nn.Module, config: TrainConfig, dtype) -> TrainingState:
        optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        return cls(
            model,
            optimizer,
            _lr_scheduler(optimizer, config),
            torch.amp.GradScaler(enabled=dtype == torch.float16),
            np.random.default_rng(config.seed),
            torch.Generator().manual_seed(config.seed),
            forward=torch.compile(model) if config.compile else model,
        )

    def save(self, path: Path, fingerprint: str) -> None:
        """Write the state atomically (a kill mid-write leaves the previous one)."""
        state = {
            "fingerprint": fingerprint,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "numpy_rng": self.rng.bit_generator.state,
            "augment_rng": self.augment_rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "rows": self.rows,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
        }
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    def resume(self, path: Path, fingerprint: str, epochs: int) -> bool:
        """Restore the state saved at ``path`` if it exists, loads, belongs to this run
        (``fingerprint``) and is not past its last epoch; True if it did."""
        saved = _saved_state(path, fingerprint, epochs)
        if saved is None:
            return False
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.scaler.load_state_dict(saved["scaler"])
        self.rng.bit_generator.state = saved["numpy_rng"]
        self.augment_rng.set_state(saved["augment_rng"])
        torch.set_rng_state(saved["torch_rng"])
        self.rows, self.epoch = saved["rows"], saved["epoch"]
        self.best_score, self.best_epoch = saved["best_score"], saved["best_epoch"]
        log.info("resuming %s after epoch %d", path.parent, self.epoch)
        return True


def _saved_state(path: Path, fingerprint: str, epochs: int) -> dict | None:
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a corrupt file is never used: start afresh
        log.warning("%s: unreadable training state (%s); starting afresh", path, error)
        return None
    if state.get("fingerprint") != fingerprint:
        log.info("%s: state of other settings; starting afresh", path)
        return None
    if state["epoch"] > epochs:
        log.info(
            "%s: state after epoch %d, beyond %d; starting afresh", path, state["epoch"], epochs
        )
        return None
    return state


@dataclass(frozen=True)
class _Step:
    """What one training step needs besides the state: data, sampling weights, settings."""

    data: TrainData
    weights: np.ndarray  # crop sampling weight per training image
    config: TrainConfig
    heads: tuple[str, ...]
    loss: LossConfig
    augment: AugmentConfig
    device: torch.device
    dtype: torch.dtype | None
    score_column: str  # the log column of the validation score: valid_<name>


def crop_weights(data: TrainData) -> np.ndarray:
    """Crops are drawn uniformly over pixels, times each image's sampling weight
    (balancing): one probability per training image."""
    weights = np.array([i[0].size for i in data.train_images], float)
    if data.train_weights is not None:
        weights *= np.asarray(data.train_weights, float)
    return weights / weights.sum()


def run_fingerprint(step: _Step, net: ModelConfig, extra: list) -> str:
    """Everything that determines a run but the epoch count and the machine: a longer run
    continues a shorter one (not under a cosine schedule, whose every step depends on the
    run's length), and the data itself, summarised."""
    run = replace(
        step.config,
        epochs=step.config.epochs if step.config.schedule == "cosine" else 0,
        early_stop=0,
        device="",
        max_seconds=0,
        precision=precision_name(step.dtype),
        init_share=0.0,  # applied to the written model only
    )
    data = step.data
    summary = [float(x.sum(dtype=np.float64)) for x in data.train_images + data.train_targets]
    if data.valid_groups is not None:  # the best epoch is chosen on a balanced score
        summary.append("validation balanced by acquisition and category")
    return _fingerprint(net, run, step.loss, step.augment, *extra, step.weights.tolist(), summary)


def _train_epoch(state: TrainingState, step: _Step, progress: _Progress) -> tuple[dict, float]:
    """One epoch of ``steps_per_epoch`` optimiser steps: summed losses per part and the
    seconds spent preparing data."""
    config, sums, data_seconds = step.config, {}, 0.0
    state.model.train()
    for number in range(1, config.steps_per_epoch + 1):
        tick = time.perf_counter()
        inputs, targets = sample_crops(
            state.rng,
            step.data.train_images,
            step.data.train_targets,
            step.weights,
            config.batch_size,
            config.crop,
        )
        inputs, targets = augment_batch(state.augment_rng, inputs, targets, step.augment)
        inputs, targets = channels_last(inputs.to(step.device)), targets.to(step.device)
        data_seconds += time.perf_counter() - tick
        state.optimizer.zero_grad(set_to_none=True)
        with autocast(step.device, step.dtype):
            output = state.forward(inputs).float32()
        total, parts = segmentation_loss(output, targets, step.heads, step.loss)
        state.scaler.scale(total).backward()
        state.scaler.step(state.optimizer)
        state.scaler.update()
        if config.schedule == "cosine":
            state.scheduler.step()
        for key, value in {"train_loss": total, **parts}.items():
            sums[key] = sums.get(key, 0.0) + value.item()
        progress.update(state.epoch + 1, number, sums["train_loss"] / number)
    return sums, data_seconds


def _finish_epoch(
    state: TrainingState, step: _Step, sums: dict, valid: tuple[float, float], timing: dict
) -> dict:
    """Count the epoch, step the plateau schedule, note the best epoch; append and return
    the log row (``timing``: its ``seconds`` and ``data_seconds``)."""
    config, (valid_loss, valid_score) = step.config, valid
    state.epoch += 1
    train_loss = sums["train_loss"] / config.steps_per_epoch
    # the LR follows the smooth validation loss; the kept checkpoint, the validation score
    if config.schedule == "plateau":
        state.scheduler.step(valid_loss if np.isfinite(valid_loss) else train_loss)
    score = valid_score if np.isfinite(valid_score) else -train_loss
    if score > state.best_score:
        state.best_score, state.best_epoch = score, state.epoch
    row = {
        f"loss_{k}" if k != "train_loss" else k: round(v / config.steps_per_epoch, 5)
        for k, v in sums.items()
    }
    row.update(
        epoch=state.epoch,
        valid_loss=round(valid_loss, 5),
        **{step.score_column: round(valid_score, 5)},
        lr=state.optimizer.param_groups[0]["lr"],
        **{k: round(v, 3) for k, v in timing.items()},
    )
    state.rows.append(row)
    return row


def _log_start(net: ModelConfig, model, device, threads: int, dtype) -> None:
    log.info(
        "model %s (%s encoder, heads %s): %d parameters, device %s "
        "(CUDA_VISIBLE_DEVICES=%s), %d threads, precision %s",
        net.arch,
        net.encoder,
        ",".join(net.heads),
        count_parameters(model),
        device,
        os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
        threads,
        precision_name(dtype),
    )


def blend_weights(init: dict, tuned: dict, init_share: float) -> dict:
    """``init_share`` x ``init`` + (1 - ``init_share``) x ``tuned``, tensor by tensor, in
    ``tuned``'s dtypes; integer tensors (batch-norm counts) are ``tuned``'s.  Weight-space
    ensembling of a fine-tune with the weights it started from (WiSE-FT, Wortsman et al.
    2022): it keeps part of what the fine-tune gained and of what it forgot."""
    if init.keys() != tuned.keys():
        raise ValueError("blend_weights: the two state dicts hold different tensors")
    return {
        name: torch.lerp(value.float(), init[name].float(), init_share).to(value.dtype)
        if value.is_floating_point()
        else value
        for name, value in tuned.items()
    }


def _write_outputs(
    state: TrainingState,
    paths: TrainPaths,
    recorded: dict,
    columns: list[str],
    blended: Callable[[Path], None] | None = None,
) -> pd.DataFrame:
    """The last weights, the best ones (saved when reached) as the model, or what
    ``blended`` writes from them, the epoch log and its plot."""
    save_checkpoint(state.model, paths.last, {**recorded, "epoch": state.epoch})
    with atomic_path(paths.model) as tmp:
        if blended is None:
            shutil.copyfile(paths.checkpoints / "best.pt", tmp)
        else:
            blended(tmp)
    table = pd.DataFrame(state.rows, columns=columns)
    write_table(table, paths.log)
    plot_learning_curve(table, paths.curve)
    return table


def _record_epoch(
    state: TrainingState, row: dict, paths: TrainPaths, fingerprint: str, recorded: dict
) -> None:
    """Save the weights when the epoch is the best so far, then the resumable state."""
    if state.best_epoch == state.epoch:
        save_checkpoint(
            state.model, paths.checkpoints / "best.pt", {**recorded, "epoch": row["epoch"]}
        )
    state.save(paths.checkpoints / "last.pt", fingerprint)


def _row_text(row: dict, columns: list[str]) -> str:
    return " ".join(f"{k}={row[k]}" for k in columns[1:])


def train_model(
    data: TrainData,
    net: ModelConfig,
    config: TrainConfig,
    paths: TrainPaths,
    *,
    loss: LossConfig = LossConfig(),
    augment: AugmentConfig = AugmentConfig(),
    postprocess: PostprocessConfig = PostprocessConfig(),
    normalize: NormalizeConfig = NormalizeConfig(),
    threads: int = 1,
    validation: ValidationScore | None = None,
    init: Path | str | None = None,
) -> pd.DataFrame:
    """Train (or resume training); write :class:`TrainPaths`; return the epoch log.

    ``normalize`` is how the data was normalised; checkpoints record it, so that
    ``nucseg predict`` prepares new images the same way. ``validation`` scores each epoch
    (the best epoch is kept; balanced over ``data.valid_groups`` when given); by default
    the nuclei DSB after ``postprocess``.  ``init``: a
    checkpoint (or model folder) of the same network whose weights training starts from
    (fine-tuning a shipped model)."""
    validation = validation or dsb_validation(postprocess)
    if config.init_share and init is None:
        raise NucsegInputError("train.init_share blends with init weights: give the model init")
    if not 0 <= config.init_share < 1:
        raise NucsegInputError(f"train.init_share: {config.init_share} is not in [0, 1)")
    seed_everything(config.seed)
    torch.set_num_threads(max(1, threads))
    device = select_device(config.device)
    dtype = autocast_dtype(config.precision, device)
    # the input channels follow the data (1; 3 for normalize.method 'rgb', 4 for 'auto+rgb')
    net = replace(net, in_channels=int(data.train_images[0].shape[0]))
    model = build_model(net)
    init_digest = [load_initial_weights(model, init)] if init is not None else []
    init_weights = (
        {k: v.detach().clone() for k, v in model.state_dict().items()} if config.init_share else {}
    )
    state = TrainingState.start(channels_last(model.to(device)), config, dtype)
    score_column = f"valid_{validation.name}"
    step = _Step(
        data, crop_weights(data), config, net.heads, loss, augment, device, dtype, score_column
    )
    fingerprint = run_fingerprint(step, net, [postprocess, normalize, *init_digest])
    state.resume(paths.checkpoints / "last.pt", fingerprint, config.epochs)
    _log_start(net, state.model, device, threads, dtype)
    columns = log_columns(net.heads, net.presence_head, validation.name)
    recorded = {"normalize": asdict(normalize), "precision": precision_name(dtype)}
    if data.nucleus_diameter:  # the size predict.shrink_from brings large nuclei to
        recorded["nucleus_diameter"] = data.nucleus_diameter
    progress, started = _Progress(config.epochs, config.steps_per_epoch), time.perf_counter()
    while state.epoch < config.epochs:
        if config.early_stop and state.epoch - state.best_epoch >= config.early_stop:
            log.info("early stop: no improvement for %d epochs", config.early_stop)
            break
        start = time.perf_counter()
        sums, data_seconds = _train_epoch(state, step, progress)
        valid = _validate(state.model, data, device, dtype, loss, validation)
        timing = {"seconds": time.perf_counter() - start, "data_seconds": data_seconds}
        row = _finish_epoch(state, step, sums, valid, timing)
        _record_epoch(state, row, paths, fingerprint, {**recorded, score_column: valid[1]})
        log.info("epoch %d/%d %s", state.epoch, config.epochs, _row_text(row, columns))
        if config.max_seconds and time.perf_counter() - started >= config.max_seconds:
            log.info("time budget of %.0f s reached", config.max_seconds)
            break

    def blended(path: Path) -> None:  # the best epoch blended with the init weights
        best = read_checkpoint(paths.checkpoints / "best.pt")
        state.model.load_state_dict(
            blend_weights(init_weights, best["state_dict"], config.init_share)
        )
        score = round(_validate(state.model, data, device, dtype, loss, validation)[1], 5)
        log.info(
            "written: epoch %s blended with %.2f of the init weights, %s=%s",
            best["epoch"],
            config.init_share,
            score_column,
            score,
        )
        extra = {"epoch": best["epoch"], "init_share": config.init_share, score_column: score}
        save_checkpoint(state.model, path, {**recorded, **extra})

    return _write_outputs(state, paths, recorded, columns, blended if config.init_share else None)


def _lr_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """The learning-rate scheduler of ``config.schedule`` (module docstring)."""
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=config.lr_factor, patience=config.lr_patience
        )
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer,
            T_max=config.epochs * config.steps_per_epoch,
            eta_min=config.learning_rate * config.lr_factor,
        )
    raise ValueError(f"train.schedule must be plateau or cosine, not {config.schedule!r}")


def load_initial_weights(model: torch.nn.Module, init: Path | str) -> str:
    """Load the weights of checkpoint ``init`` (or ``init/model.pt``) into ``model``, whose
    network must be the one the checkpoint describes; return the file's sha256 (it goes
    into the run's fingerprint).

    The model may take more input channels than the checkpoint (e.g. ``normalize.method``
    ``auto+rgb`` after ``auto``): the checkpoint's channels come first and the first
    convolution's weights of the new ones start at zero, so the network computes what the
    checkpoint computed until training gives the new channels a use."""
    path = Path(init) / "model.pt" if Path(init).is_dir() else Path(init)
    payload = read_checkpoint(path)
    shipped = ModelConfig(**payload["net"]).to_dict()
    wanted = model.config.to_dict()
    differing = sorted(
        k
        for k in wanted
        if k != "encoder_weights"
        and shipped[k] != wanted[k]
        and not (k == "in_channels" and shipped[k] < wanted[k])
    )
    if differing:
        key = differing[0]
        raise NucsegInputError(
            f"{path}: init weights are of another network ({key} {shipped[key]!r}, the model's "
            f"net has {wanted[key]!r}); give the model the checkpoint's net settings"
        )
    model.load_state_dict(_grow_input_channels(payload["state_dict"], model.state_dict()))
    log.info("initial weights from %s (epoch %s)", path, payload.get("epoch", "?"))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _grow_input_channels(loaded: dict, wanted: dict) -> dict:
    """``loaded`` with every convolution weight that sees fewer input channels than its
    counterpart in ``wanted`` (the input convolution) zero-padded to the wanted count."""
    grown = dict(loaded)
    for key, tensor in loaded.items():
        target = wanted.get(key)
        if target is not None and tensor.ndim == 4 and tensor.shape[1] < target.shape[1]:
            padding = tensor.new_zeros(
                (tensor.shape[0], target.shape[1] - tensor.shape[1], *tensor.shape[2:])
            )
            grown[key] = torch.cat([tensor, padding], dim=1)
            log.info("%s: %d new input channels start at zero", key, padding.shape[1])
    return grown


def target_indices(heads: tuple[str, ...]) -> list[int]:
    """Channels of the cached target stack a network with ``heads`` learns, then the weight."""
    return [TARGET_CHANNELS.index(h) for h in heads] + [TARGET_CHANNELS.index("weight")]


def load_train_data(
    manifest_path: Path | str, fold_dir: Path | str, heads: tuple[str, ...] = ("semantic",)
) -> TrainData:
    """Load a materialised fold (:func:`nucseg.folds.materialize_fold`): normalised images,
    the cached targets of ``heads`` plus the weight map, labels per side, each training
    image's sampling weight and each validation image's category and acquisition (its
    score is balanced by them: a fold of whole acquisitions is often mostly one of them), and
    the typical nucleus size of its training side (checkpoints record it)."""

    fold_dir = Path(fold_dir)
    train_ids = fold_side_ids(fold_dir, "train")
    valid_ids = fold_side_ids(fold_dir, "valid")
    log.info("%d training and %d validation images", len(train_ids), len(valid_ids))
    channels = target_indices(heads)

    def load(side: str, ids: list[str]):
        images = load_normalized(fold_dir / side / "normalized", ids)
        targets = [read_channels(fold_dir / side / "targets" / f"{i}.tif")[channels] for i in ids]
        labels = [read_tiff(fold_dir / side / "labels" / f"{i}.tif").astype(np.int32) for i in ids]
        return [images[i] for i in ids], targets, labels

    train_images, train_targets, _ = load("train", train_ids)
    valid_images, valid_targets, valid_labels = load("valid", valid_ids)
    manifest = read_manifest(manifest_path).set_index("id")
    weights = [float(manifest.at[i, "sampling_weight"]) for i in train_ids]
    groups = [(manifest.at[i, "category"], manifest.at[i, "acquisition"]) for i in valid_ids]
    return TrainData(
        train_images,
        train_targets,
        valid_images,
        valid_targets,
        valid_labels,
        weights,
        groups,
        training_nucleus_diameter(manifest, train_ids),
    )
