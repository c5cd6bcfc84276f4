"""Ultrasound nerve segmentation (the Kaggle ultrasound-nerve-segmentation task).

Layout, as Kaggle shipped it: ``train/<subject>_<n>.tif`` with ``train/<subject>_<n>_mask.tif``
(420 rows x 580 columns, 8-bit grayscale; the mask 0/255, empty when the image shows no
nerve) and ``test/<n>.tif``. A submission has the header ``img,pixels``: one row per test
image, its nerve run-length encoded (1-indexed, column-major, :mod:`nucseg.rle`), empty when
there is none. The score is the mean Dice over images, an empty prediction of an empty mask
counting 1.

The network (a U-Net with an image-level presence head, :mod:`nucseg.models`) works on
images shrunk to ``input_size``; its pixel map is enlarged back and gated by the presence
head: no nerve unless the presence probability and the area both pass their thresholds.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from nucseg.checkpoints import load_model, select_device
from nucseg.errors import NucsegInputError
from nucseg.folds import held_out_names
from nucseg.io.atomic import atomic_directory, atomic_path
from nucseg.io.ultrasound import list_test, list_train, read_gray, read_mask
from nucseg.metrics import dice
from nucseg.models import ModelConfig, SegmentationNet, build_model, count_parameters
from nucseg.normalize import percentile_scale
from nucseg.predict import predict_with_presence
from nucseg.rle import decode_rle, encode_mask
from nucseg.train import TrainData, ValidationScore

IMAGE_SHAPE = (420, 580)


# --- preparation --------------------------------------------------------------------------


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``1 x h x w`` float32 in [0, 1]: area-averaged to ``size``, percentile-scaled."""
    tensor = torch.from_numpy(image.astype(np.float32))[None, None]
    small = F.interpolate(tensor, size=size, mode="area")[0].numpy()
    return percentile_scale(small)


def shrink_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    tensor = torch.from_numpy(mask.astype(np.float32))[None, None]
    return (F.interpolate(tensor, size=size, mode="area")[0, 0].numpy() >= 0.5).astype(np.float32)


def prepare_train(
    folder: Path | str, size: tuple[int, int], valid_fraction: float, seed: int
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Shrunk images ``N x 1 x h x w``, masks ``N x h x w`` and full-size masks of a train
    folder, and the split table (id, subject, present, side): validation stratified by mask
    presence."""
    table = list_train(folder)
    images, masks, full = [], [], []
    for row in table.itertuples():
        image = read_gray(row.image)
        mask = read_mask(row.mask, image.shape)
        images.append(shrink(image, size))
        masks.append(shrink_mask(mask, size))
        full.append(mask)
    table["present"] = [bool(m.any()) for m in full]
    presence = pd.Series(np.where(table.present, "nerve", "empty"), index=table.id)
    valid = held_out_names(presence, valid_fraction, seed)
    table["side"] = np.where(table.id.isin(valid), "valid", "train")
    arrays = {"images": np.stack(images), "masks": np.stack(masks), **padded_masks(full)}
    return arrays, table[["id", "subject", "present", "side"]]


def padded_masks(masks: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Full-size masks of any sizes as one array: ``full_masks`` zero-padded to the largest
    size and ``full_shapes`` (``N x 2``) to cut them back (:func:`full_size_masks`)."""
    height = max(m.shape[0] for m in masks)
    width = max(m.shape[1] for m in masks)
    padded = np.zeros((len(masks), height, width), bool)
    for k, mask in enumerate(masks):
        padded[k, : mask.shape[0], : mask.shape[1]] = mask
    return {"full_masks": padded, "full_shapes": np.array([m.shape for m in masks], np.int32)}


def full_size_masks(arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The full-size masks of a prepared folder, each in its own size."""
    shapes = arrays.get("full_shapes")
    if shapes is None:  # prepared before sizes could differ: one size
        return list(arrays["full_masks"])
    return [m[:h, :w] for m, (h, w) in zip(arrays["full_masks"], shapes, strict=True)]


# --- prediction, submission, score --------------------------------------------------------


@dataclass(frozen=True)
class NerveDecision:
    """How the two heads become a mask: pixels above ``threshold`` if the presence
    probability is above ``presence_threshold`` and the area (at full size) is at least
    ``min_area`` pixels; otherwise no nerve."""

    threshold: float = 0.5
    presence_threshold: float = 0.5
    min_area: int = 1500


#: dihedral view of a left-right mirror (:func:`nucseg.augment.dihedral`)
MIRROR_VIEW = 7


def nerve_probability(
    model: SegmentationNet,
    image: np.ndarray,
    device: torch.device,
    hflip: bool = True,
    precision: str = "auto",
) -> tuple[np.ndarray, float]:
    """Pixel probability ``h x w`` and presence probability of a shrunk ``1 x h x w``
    image, averaged with its left-right mirror when ``hflip`` (the nuclei engine,
    :func:`nucseg.predict.predict_with_presence`: bf16 where the CPU has it)."""
    views = (0, MIRROR_VIEW) if hflip else (0,)
    maps, presence = predict_with_presence(model, image, device, views, precision)
    return maps[0], 1.0 if presence is None else presence


def enlarge(probability: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A shrunk probability map brought back to the image's ``shape`` (bilinear)."""
    tensor = torch.from_numpy(probability.astype(np.float32))[None, None]
    return F.interpolate(tensor, size=shape, mode="bilinear", align_corners=False)[0, 0].numpy()


def decide(
    probability: np.ndarray, presence: float, shape: tuple[int, int], decision: NerveDecision
) -> np.ndarray:
    """The full-size boolean mask of one image from its shrunk probability map."""
    if presence < decision.presence_threshold:
        return np.zeros(shape, bool)
    mask = enlarge(probability, shape) > decision.threshold
    return mask if mask.sum() >= decision.min_area else np.zeros(shape, bool)


#: decisions searched on the validation images after training (:func:`tune_decision`)
DECISION_GRID = {
    "threshold": (0.3, 0.4, 0.5, 0.6, 0.7),
    "presence_threshold": (0.0, 0.2, 0.35, 0.5, 0.65),
    "min_area": (0, 500, 1500, 3000),
}


def tune_decision(
    maps: list[tuple[np.ndarray, float]], truths: list[np.ndarray], grid: dict = DECISION_GRID
) -> pd.DataFrame:
    """Mean Dice of every decision of ``grid`` over validation images (``maps``: each
    image's shrunk probability and presence, from :func:`nerve_probability`), best first.
    One enlargement and one threshold per image and pixel threshold; the presence and area
    gates only choose between that mask and an empty one."""
    thresholds = grid["threshold"]
    gates = [(p, a) for p in grid["presence_threshold"] for a in grid["min_area"]]
    totals = np.zeros((len(thresholds), len(gates)))
    for (probability, presence), truth in zip(maps, truths, strict=True):
        large, true_area = enlarge(probability, truth.shape), int(truth.sum())
        for i, threshold in enumerate(thresholds):
            mask = large > threshold
            area, overlap = int(mask.sum()), int(np.logical_and(mask, truth).sum())
            kept = 2 * overlap / (area + true_area) if area + true_area else 1.0
            empty = 0.0 if true_area else 1.0
            for j, (presence_threshold, min_area) in enumerate(gates):
                passes = presence >= presence_threshold and area >= min_area
                totals[i, j] += kept if passes else empty
    rows = [
        {"threshold": t, "presence_threshold": p, "min_area": a, "dice": totals[i, j] / len(maps)}
        for i, t in enumerate(thresholds)
        for j, (p, a) in enumerate(gates)
    ]
    table = pd.DataFrame(rows).sort_values("dice", ascending=False, kind="stable")
    return table.reset_index(drop=True)


def write_decision(decision: NerveDecision, scores: dict, path: Path | str) -> None:
    """The tuned decision and the validation Dice before and after, as JSON."""
    payload = {"decision": asdict(decision), **scores}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=1) + "\n")


def read_decision(path: Path | str) -> NerveDecision:
    """The decision of a file written by :func:`write_decision`."""
    try:
        return NerveDecision(**json.loads(Path(path).read_text())["decision"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise NucsegInputError(f"{path}: not a nerve decision file ({error})") from None


def write_nerve_submission(masks: dict[int, np.ndarray], path: Path | str) -> None:
    """``img,pixels`` rows sorted by image number; pixels 1-indexed column-major RLE."""
    lines = ["img,pixels"] + [f"{n},{encode_mask(masks[n])}" for n in sorted(masks)]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def read_nerve_submission(
    path: Path | str, shapes: dict[int, tuple[int, int]] | None = None
) -> dict[int, np.ndarray]:
    """The masks of an ``img,pixels`` file (checked: header, integer ids, valid RLE), each
    of its image's size in ``shapes`` (default: Kaggle's 420 x 580)."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype={"pixels": str}, keep_default_na=False)
    except (OSError, ValueError) as error:
        raise NucsegInputError(f"{path}: not a readable img,pixels CSV ({error})") from None
    if list(table.columns) != ["img", "pixels"]:
        raise NucsegInputError(
            f"{path}: expected the header img,pixels, found {','.join(table.columns)}"
        )
    shapes = shapes or {}
    unknown = sorted(set(table.img) - set(shapes)) if shapes else []
    if unknown:
        raise NucsegInputError(f"{path}: img {unknown[0]} is not a test image")
    return {
        int(row.img): decode_rle(
            row.pixels, shapes.get(int(row.img), IMAGE_SHAPE), where=f"{path} (img {row.img})"
        )
        for row in table.itertuples()
    }


def shapes_of_test_images(folder: Path | str) -> dict[int, tuple[int, int]]:
    """``{n: (rows, columns)}`` of the ``<n>.tif`` images of a test folder."""
    return {number: read_gray(path).shape for number, path in list_test(folder)}


def score_nerve(truth: dict[int, np.ndarray], predicted: dict[int, np.ndarray]) -> pd.DataFrame:
    """Per-image Dice (and presence of each) with a final ``mean`` row."""
    missing = sorted(set(truth) - set(predicted))
    if missing:
        raise NucsegInputError(f"the submission has no row for test image {missing[0]}")
    rows = [
        {
            "img": str(n),
            "dice": dice(truth[n], predicted[n]),
            "true_nerve": bool(truth[n].any()),
            "predicted_nerve": bool(predicted[n].any()),
        }
        for n in sorted(truth)
    ]
    table = pd.DataFrame(rows)
    mean = {
        "img": "mean",
        "dice": table.dice.mean(),
        "true_nerve": table.true_nerve.mean(),
        "predicted_nerve": table.predicted_nerve.mean(),
    }
    return pd.concat([table, pd.DataFrame([mean])], ignore_index=True).round(5)


# --- the task's training and prediction, on the shared library ----------------------------


def train_data(arrays: dict[str, np.ndarray], split: pd.DataFrame) -> TrainData:
    """:class:`nucseg.train.TrainData` of a prepared folder: shrunk images, targets (mask,
    then a weight map of ones), and the full-size validation masks the score compares with."""
    targets = np.stack([arrays["masks"], np.ones_like(arrays["masks"])], axis=1)
    train = np.flatnonzero(split.side.to_numpy() == "train")
    valid = np.flatnonzero(split.side.to_numpy() == "valid")
    return TrainData.pick(arrays["images"], targets, full_size_masks(arrays), train, valid)


def dice_validation(decision: NerveDecision = NerveDecision()) -> ValidationScore:
    """Training's per-epoch score: the Dice of the decided full-size mask."""

    def score(prob: np.ndarray, presence: float | None, truth: np.ndarray) -> float:
        return dice(
            truth, decide(prob[0], 1.0 if presence is None else presence, truth.shape, decision)
        )

    return ValidationScore("dice", score)


def tune_on_validation(
    model_path: Path | str,
    arrays: dict[str, np.ndarray],
    split: pd.DataFrame,
    default: NerveDecision = NerveDecision(),
    *,
    hflip: bool = True,
    device: str = "auto",
) -> tuple[NerveDecision, dict]:
    """The decision with the best mean Dice on the validation images of a prepared folder,
    and the scores: validation Dice with ``default`` and tuned, the number of validation
    images and the share of them that show a nerve."""
    torch_device = select_device(device)
    model = load_model(model_path, torch_device)
    valid = np.flatnonzero(split.side.to_numpy() == "valid")
    if valid.size == 0:
        return default, {"valid_images": 0}
    full = full_size_masks(arrays)
    truths = [full[i] for i in valid]
    maps = [nerve_probability(model, arrays["images"][i], torch_device, hflip) for i in valid]
    table = tune_decision(maps, truths)
    best = table.iloc[0]
    tuned = NerveDecision(float(best.threshold), float(best.presence_threshold), int(best.min_area))
    fixed = tune_decision(maps, truths, {k: (v,) for k, v in asdict(default).items()})
    return tuned, {
        "valid_images": int(valid.size),
        "valid_dice_default": round(float(fixed.dice[0]), 5),
        "valid_dice_tuned": round(float(best.dice), 5),
        "valid_with_nerve": round(float(np.mean([t.any() for t in truths])), 5),
    }


def predict_folder(
    model_path: Path | str,
    test_folder: Path | str,
    size: tuple[int, int],
    decision: NerveDecision = NerveDecision(),
    *,
    hflip: bool = True,
    device: str = "auto",
) -> dict[int, np.ndarray]:
    """Full-size masks of every ``<n>.tif`` of a test folder (model loaded once)."""
    torch_device = select_device(device)
    model = load_model(model_path, torch_device)
    masks = {}
    for number, path in list_test(test_folder):
        image = read_gray(path)
        probability, presence = nerve_probability(model, shrink(image, size), torch_device, hflip)
        masks[number] = decide(probability, presence, image.shape, decision)
    return masks


# --- a shipped nerve model folder -----------------------------------------------------------

#: files of an exported nerve model folder
NERVE_MODEL_FILES = ("model.pt", "decision.json", "nerve.json", "train_log.tsv", "README.md")


def export_nerve_model(
    model_dir: Path | str,
    scores_path: Path | str | None,
    out_dir: Path | str,
    spec: dict,
    *,
    name: str,
    data: str,
) -> None:
    """Write a nerve model folder (:data:`NERVE_MODEL_FILES`) that loads alone: float16
    weights, the tuned decision, the input size and mirror setting (``nerve.json``), the
    epoch log and a card with the validation and test Dice (``scores_path``: the task's
    ``scores.tsv``, or None) beside the "no nerve everywhere" baseline."""
    from nucseg.export import half_precision  # the nuclei export's float16 storage

    model_dir = Path(model_dir)
    payload = torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True)
    decision = json.loads((model_dir / "decision.json").read_text())
    settings = {"input_size": list(spec["input_size"]), "hflip_tta": spec.get("hflip_tta", True)}
    scores = pd.read_csv(scores_path, sep="\t") if scores_path else None
    with atomic_directory(out_dir) as target:
        torch.save(half_precision(payload), target / "model.pt")
        (target / "decision.json").write_text(json.dumps(decision, indent=1) + "\n")
        (target / "nerve.json").write_text(json.dumps(settings, indent=1) + "\n")
        shutil.copy(model_dir / "train_log.tsv", target / "train_log.tsv")
        card = nerve_card(name, data, payload, decision, settings, scores)
        (target / "README.md").write_text(card)


def nerve_card(name, data, payload, decision, settings, scores) -> str:
    """The model card of an exported nerve model folder."""
    parameters = count_parameters(build_model(ModelConfig(**payload["net"])))
    test = "not scored (no test masks)"
    if scores is not None:
        per_image = scores[scores.img != "mean"]
        empty = float((~per_image.true_nerve.astype(bool)).mean())
        test = (
            f"mean Dice {per_image.dice.mean():.3f} over {len(per_image)} test images "
            f'("no nerve everywhere" scores {empty:.3f}: the share of test images without one)'
        )
    arch = f"{payload['net']['arch']}, {parameters / 1e6:.2f} M parameters"
    return f"""# {name}: ultrasound nerve segmentation ({arch})

A U-Net with an image-level presence head (nucseg's nerve task): the nerve mask of a B-mode
ultrasound frame, or none.

## Use
```python
from nucseg.nerve import load_nerve_folder
masks = load_nerve_folder("resources/models/{name}").predict_folder("test_folder/")  # {{n: mask}}
```
Input: 8-bit gray frames `<n>.tif`, any size; each is shrunk to {settings["input_size"][0]} x
{settings["input_size"][1]} (area average, percentile-scaled), predicted (averaged with its
left-right mirror: {settings["hflip_tta"]}), enlarged back and decided: pixels above
{decision["decision"]["threshold"]}, kept if the presence probability is at least
{decision["decision"]["presence_threshold"]} and the area at least
{decision["decision"]["min_area"]} pixels (tuned on the validation images).

## Data and licence
{data}

## Validation
- Validation images: {decision.get("valid_images")}; Dice with the default decision
  {decision.get("valid_dice_default")}, with the tuned one {decision.get("valid_dice_tuned")}.
- Test: {test}.
- Best epoch {payload.get("epoch")} (validation Dice {payload.get("valid_dice", float("nan")):.3f}).
"""


@dataclass(frozen=True)
class NerveModelFolder:
    """A nerve model folder written by :func:`export_nerve_model`, loaded for prediction."""

    folder: Path
    decision: NerveDecision
    input_size: tuple[int, int]
    hflip: bool

    def predict_folder(self, test_folder: Path | str, device: str = "auto"):
        """Full-size masks ``{n: bool mask}`` of the ``<n>.tif`` images of a folder."""
        return predict_folder(
            self.folder / "model.pt",
            test_folder,
            self.input_size,
            self.decision,
            hflip=self.hflip,
            device=device,
        )


def load_nerve_folder(folder: Path | str) -> NerveModelFolder:
    """A nerve model folder (model.pt, decision.json, nerve.json), checked."""
    folder = Path(folder)
    for name in ("model.pt", "decision.json", "nerve.json"):
        if not (folder / name).is_file():
            raise NucsegInputError(f"{folder}: not a nerve model folder (no {name})")
    settings = json.loads((folder / "nerve.json").read_text())
    return NerveModelFolder(
        folder,
        read_decision(folder / "decision.json"),
        tuple(settings["input_size"]),
        bool(settings.get("hflip_tta", True)),
    )
