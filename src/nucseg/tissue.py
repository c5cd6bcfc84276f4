"""Multi-class tissue segmentation: 4 classes per pixel in H&E-like tiles.

Layout: ``images/<name>.png`` RGBA tissue tiles (512 x 512) and ``masks/<name>.png``
palette-mode (P) annotations of the same name, whose palette indices are the classes
(0 background, 1 stroma, 2 tumour, 3 necrosis). Preparation composites RGBA on white,
scales colours to [0, 1] and one-hot encodes the classes; the split is 80/20. The network
is a U-Net with one softmax head (``ModelConfig.classes``) trained with cross-entropy +
multi-class soft Dice on the shared loop; scores are per-class Dice and IoU over the test
images' pixels, and colour overlays show the prediction beside the truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage as ndi

from nucseg.checkpoints import load_model, select_device
from nucseg.errors import NucsegInputError
from nucseg.folds import holdout_split
from nucseg.io.atomic import atomic_path
from nucseg.io.images import read_image, read_palette_indices, to_rgb8
from nucseg.predict import predict_probability
from nucseg.train import TrainData, ValidationScore

CLASSES = ("background", "stroma", "tumour", "necrosis")
#: display colours of the classes (also the masks' palette)
COLOURS = np.array([[255, 255, 255], [230, 120, 160], [110, 40, 150], [240, 200, 80]], np.uint8)
# Ruifrok & Johnston optical densities of haematoxylin and eosin (R, G, B)
_HAEMATOXYLIN = np.array([0.65, 0.70, 0.29])
_EOSIN = np.array([0.07, 0.99, 0.11])


# --- synthetic data ---------------------------------------------------------------------


@dataclass(frozen=True)
class TissueSynthConfig:
    n_images: int = 40
    size: int = 512
    seed: int = 11


def _field(rng, size, sigma) -> np.ndarray:
    field = ndi.gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-9)


def synth_tissue(rng: np.random.Generator, size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """One RGBA tile (uint8) and its class map (uint8 0..3).

    Regions from smooth random fields (glass where tissue thins out; stroma, tumour nests
    and necrotic patches inside), then stain amounts per class with texture: wavy eosin
    fibres in stroma, dense dark nuclei in tumour, pale eosin with nuclear debris in
    necrosis; rendered by Beer-Lambert absorption, with blur and sensor noise.
    """
    tissue = _field(rng, size, 60) > rng.uniform(-1.2, -0.4)
    tumour = _field(rng, size, 28) + rng.uniform(-0.3, 0.5)
    necrosis = _field(rng, size, 22) - 1.2 + 0.8 * (tumour > 0.6)
    classes = np.where(tissue, 1, 0).astype(np.uint8)
    classes[tissue & (tumour > 0.4)] = 2
    classes[tissue & (necrosis > 0.3)] = 3
    fibres = ndi.gaussian_filter(rng.standard_normal((size, size)), (1.0, 6.0))
    fibres = ndi.rotate(fibres, rng.uniform(0, 180), reshape=False, mode="wrap")
    nuclei = ndi.gaussian_filter(rng.standard_normal((size, size)), 2.2)
    nuclei = (nuclei > np.percentile(nuclei, 80)).astype(float)
    debris = (ndi.gaussian_filter(rng.standard_normal((size, size)), 1.0) > 1.4).astype(float)
    haematoxylin = np.select(
        [classes == 0, classes == 1, classes == 2, classes == 3],
        [
            0.02,
            0.12 + 0.25 * (nuclei * (rng.uniform(size=(size, size)) < 0.15)),
            0.25 + 0.9 * nuclei,
            0.1 + 0.5 * debris,
        ],
    )
    eosin = np.select(
        [classes == 0, classes == 1, classes == 2, classes == 3],
        [0.02, 0.55 + 0.25 * fibres, 0.35, 0.3 + 0.05 * fibres],
    )
    strength = rng.uniform(0.8, 1.25)
    density = strength * (haematoxylin[..., None] * _HAEMATOXYLIN + eosin[..., None] * _EOSIN)
    rgb = 255 * np.exp(-ndi.gaussian_filter(density, (0.8, 0.8, 0)))
    rgb += rng.normal(0, 3, rgb.shape)
    alpha = np.full((size, size, 1), 255.0)
    return np.clip(np.concatenate([rgb, alpha], 2), 0, 255).astype(np.uint8), classes


def save_class_map(classes: np.ndarray, path: Path | str) -> None:
    """A palette-mode PNG whose pixel values are the classes (palette: :data:`COLOURS`)."""
    image = Image.fromarray(classes.astype(np.uint8), mode="P")
    image.putpalette(COLOURS.flatten().tolist() + [0] * (768 - COLOURS.size))
    with atomic_path(path) as tmp:
        image.save(tmp)


def write_tissue_dataset(root: Path | str, config: TissueSynthConfig = TissueSynthConfig()) -> None:
    """``images/tile_NNN.png`` (RGBA) and ``masks/tile_NNN.png`` (P) under ``root``."""
    root = Path(root)
    rng = np.random.default_rng(config.seed)
    for number in range(config.n_images):
        rgba, classes = synth_tissue(rng, config.size)
        (root / "images").mkdir(parents=True, exist_ok=True)
        with atomic_path(root / "images" / f"tile_{number:03d}.png") as tmp:
            Image.fromarray(rgba, mode="RGBA").save(tmp)
        save_class_map(classes, root / "masks" / f"tile_{number:03d}.png")


# --- reading and preparation ------------------------------------------------------------


def read_tissue_image(path: Path) -> np.ndarray:
    """``3 x H x W`` float32 in [0, 1]: RGBA composited on white (RGB, gray and other modes
    as :func:`nucseg.io.images.read_image` and :func:`~nucseg.io.images.to_rgb8` take them)."""
    image = read_image(path)
    if image.ndim == 3 and image.shape[2] == 4 and image.dtype == np.uint8:
        alpha = image[..., 3:] / 255.0
        image = np.round(image[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    pixels = to_rgb8(image).astype(np.float32) / 255
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def list_pairs(images: Path | str, masks: Path | str) -> list[tuple[str, Path, Path]]:
    """``(name, image, mask)`` of every ``images/*.png`` with its same-named mask."""
    images, masks = Path(images), Path(masks)
    for folder in (images, masks):
        if not folder.is_dir():
            raise NucsegInputError(f"{folder}: folder not found")
    pairs = []
    for image in sorted(images.glob("*.png")):
        mask = masks / image.name
        if not mask.is_file():
            raise NucsegInputError(f"{image}: no annotation {mask}")
        pairs.append((image.stem, image, mask))
    if not pairs:
        raise NucsegInputError(f"{images}: no .png images")
    return pairs


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
    table = pd.DataFrame({"id": names, "origin": names, "category": "tissue"})
    _, test = holdout_split(table, test_fraction, seed)
    split = pd.DataFrame({"name": names, "side": np.where(table.id.isin(test), "test", "train")})
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
    table = pd.DataFrame({"id": train.astype(str), "origin": train.astype(str), "category": "t"})
    _, valid_ids = holdout_split(table, valid_fraction, seed)
    valid = {int(i) for i in valid_ids}
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


def class_scores(
    truth: np.ndarray, predicted: np.ndarray, n_classes: int = len(CLASSES)
) -> pd.DataFrame:
    """Per-class Dice and IoU over all pixels of the given class maps (any shape), plus the
    pixel counts; a class absent from both scores NaN. A final ``mean`` row averages the
    classes."""
    truth, predicted = np.asarray(truth).ravel(), np.asarray(predicted).ravel()
    pairs = np.bincount(truth.astype(np.int64) * n_classes + predicted, minlength=n_classes**2)
    confusion = pairs.reshape(n_classes, n_classes)
    intersection = np.diag(confusion).astype(float)
    true_count, predicted_count = confusion.sum(1), confusion.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = 2 * intersection / (true_count + predicted_count)
        iou = intersection / (true_count + predicted_count - intersection)
    table = pd.DataFrame(
        {
            "class": CLASSES[:n_classes],
            "dice": dice,
            "iou": iou,
            "true_pixels": true_count,
            "predicted_pixels": predicted_count,
        }
    )
    mean = {
        "class": "mean",
        "dice": np.nanmean(dice),
        "iou": np.nanmean(iou),
        "true_pixels": true_count.sum(),
        "predicted_pixels": predicted_count.sum(),
    }
    return pd.concat([table, pd.DataFrame([mean])], ignore_index=True).round(5)


def miou_validation() -> ValidationScore:
    """Training's per-epoch score: mean IoU over classes of the argmax class map."""

    def score(prob: np.ndarray, _presence, truth: np.ndarray) -> float:
        return float(class_scores(truth, prob.argmax(0), prob.shape[0]).iou.iloc[-1])

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
    return class_scores(arrays["classes"][test], predicted)
