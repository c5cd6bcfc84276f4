"""Multi-class tissue segmentation: 4 classes per pixel in H&E-like tiles.

Layout (:mod:`nucseg.io.tissue`): ``images/<name>.png`` RGBA tissue tiles (512 x 512) and
``masks/<name>.png`` palette-mode (P) annotations of the same name, whose palette indices are
the classes (0 background, 1 stroma, 2 tumour, 3 necrosis). Preparation composites RGBA on white,
scales colours to [0, 1] and one-hot encodes the classes; the split is 80/20. The network
is a U-Net with one softmax head (``ModelConfig.classes``) trained with cross-entropy +
multi-class soft Dice on the shared loop; scores are per-class Dice and IoU over the test
images' pixels, and colour overlays show the prediction beside the truth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from nucseg.checkpoints import load_model, select_device
from nucseg.errors import NucsegInputError
from nucseg.folds import held_out_names
from nucseg.io.atomic import atomic_path
from nucseg.io.images import read_palette_indices
from nucseg.io.tissue import CLASSES, COLOURS, list_pairs, read_tissue_image, save_class_map
from nucseg.metrics import class_scores
from nucseg.predict import predict_probability
from nucseg.train import TrainData, ValidationScore

# --- preparation -------------------------------------------------------------------------


def prepare(
    images: Path | str, masks: Path | str, test_fraction: float, seed: int
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Images ``N x 3 x H x W``, class maps ``N x H x W`` and the split table (name, side
    train|test), ``test_fraction`` of the tiles on the test side."""
    names, pixels, labels = [], [], []
    for name, image_path, mask_path in list_pairs(images, masks):
        image = read_tissue_image(image_path)
        labels.append(read_palette_indices(mask_path, image.shape[1:], len(CLASSES)))
        names.append(name)
        pixels.append(image)
    if len({p.shape for p in pixels}) > 1:
        raise NucsegInputError(f"{images}: the tiles differ in size; crop them to one size")
    test = held_out_names(pd.Series("tissue", index=names), test_fraction, seed)
    split = pd.DataFrame(
        {"name": names, "side": np.where(np.isin(names, list(test)), "test", "train")}
    )
    return {"images": np.stack(pixels), "classes": np.stack(labels)}, split


def one_hot(classes: np.ndarray, n_classes: int = len(CLASSES)) -> np.ndarray:
    """``K x H x W`` float32 one-hot of a class map."""
    return (np.arange(n_classes)[:, None, None] == classes[None]).astype(np.float32)


def train_data(
    arrays: dict[str, np.ndarray], split: pd.DataFrame, valid_fraction: float, seed: int
) -> TrainData:
    """Training tiles (a ``valid_fraction`` of them held out to pick the best epoch) with
    targets: one-hot classes, then a weight map of ones."""
    train = np.flatnonzero(split.side.to_numpy() == "train")
    valid = {
        int(i)
        for i in held_out_names(pd.Series("t", index=train.astype(str)), valid_fraction, seed)
    }
    targets = {
        i: np.concatenate(
            [one_hot(arrays["classes"][i]), np.ones((1, *arrays["classes"].shape[1:]), np.float32)]
        )
        for i in train
    }
    fit = [i for i in train if i not in valid]
    held = [i for i in train if i in valid]
    return TrainData.pick(arrays["images"], targets, arrays["classes"], fit, held)


# --- scores, prediction, overlays --------------------------------------------------------


def miou_validation() -> ValidationScore:
    """Training's per-epoch score: mean IoU over classes of the argmax class map."""

    def score(prob: np.ndarray, _presence, truth: np.ndarray) -> float:
        return float(class_scores(truth, prob.argmax(0), CLASSES[: prob.shape[0]]).iou.iloc[-1])

    return ValidationScore("miou", score)


def predict_classes(model_path: Path | str, images: np.ndarray, device: str = "auto") -> np.ndarray:
    """Class maps ``N x H x W`` (uint8) of ``N x 3 x H x W`` images (model loaded once;
    the nuclei engine: bf16 where the CPU has it, large tiles cross-faded)."""
    torch_device = select_device(device)
    model = load_model(model_path, torch_device)
    maps = [
        predict_probability(model, image, torch_device).argmax(0).astype(np.uint8)
        for image in images
    ]
    return np.stack(maps)


def overlay(image: np.ndarray, truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """``H x 3W x 3`` uint8: the tile, the truth and the prediction in class colours,
    blended 50 % over the tile."""
    rgb = (np.clip(image.transpose(1, 2, 0), 0, 1) * 255).astype(np.float32)
    panels = [rgb] + [0.5 * rgb + 0.5 * COLOURS[m].astype(np.float32) for m in (truth, predicted)]
    return np.concatenate(panels, axis=1).astype(np.uint8)


def evaluate(
    model_path: Path | str,
    arrays: dict[str, np.ndarray],
    split: pd.DataFrame,
    out_dir: Path | str,
    *,
    overlays: int = 4,
    device: str = "auto",
) -> pd.DataFrame:
    """Predict the test tiles, write their class maps (``<name>.png``, palette mode) and
    the first ``overlays`` colour overlays under ``out_dir``; return the class scores."""
    out_dir = Path(out_dir)
    test = np.flatnonzero(split.side.to_numpy() == "test")
    if test.size == 0:
        raise NucsegInputError("tissue: no test tile (raise test_fraction)")
    predicted = predict_classes(model_path, arrays["images"][test], device)
    for index, classes in zip(test, predicted, strict=True):
        save_class_map(classes, out_dir / "predictions" / f"{split.name.iloc[index]}.png")
    for index, classes in list(zip(test, predicted, strict=True))[:overlays]:
        picture = overlay(arrays["images"][index], arrays["classes"][index], classes)
        (out_dir / "overlays").mkdir(parents=True, exist_ok=True)
        with atomic_path(out_dir / "overlays" / f"{split.name.iloc[index]}.png") as tmp:
            Image.fromarray(picture).save(tmp)
    return class_scores(arrays["classes"][test], predicted, CLASSES)
