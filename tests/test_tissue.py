"""Tissue task: layout, palette annotations, softmax head and losses, per-class scores."""

import numpy as np
import pytest
import torch
from PIL import Image

from nucseg.errors import NucsegInputError
from nucseg.io.images import read_palette_indices
from nucseg.io.tissue import CLASSES
from nucseg.losses import LossConfig, cross_entropy_loss, multiclass_dice_loss
from nucseg.metrics import class_scores
from nucseg.models import ModelConfig, build_model
from nucseg.synth.tissue import TissueSynthConfig, write_tissue_dataset
from nucseg.tissue import miou_validation, one_hot, prepare, train_data
from nucseg.train import TrainConfig, TrainPaths, train_model


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    root = tmp_path_factory.mktemp("tissue")
    write_tissue_dataset(root, TissueSynthConfig(n_images=10, size=64, seed=2))
    return root


def test_generator_writes_rgba_tiles_and_palette_annotations(tiles):
    with Image.open(tiles / "images/tile_003.png") as image:
        assert image.mode == "RGBA" and image.size == (64, 64)
    with Image.open(tiles / "masks/tile_003.png") as mask:
        assert mask.mode == "P" and mask.getpalette()[3:6] == [230, 120, 160]  # stroma colour
    arrays, split = prepare(tiles / "images", tiles / "masks", 0.2, 0)
    assert arrays["images"].shape == (10, 3, 64, 64) and arrays["images"].max() <= 1
    assert set(np.unique(arrays["classes"])) <= {0, 1, 2, 3}
    assert (split.side == "test").sum() == 2  # 80/20


def test_annotation_must_be_a_palette_png_with_known_classes(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8), mode="L").save(tmp_path / "gray.png")
    with pytest.raises(NucsegInputError, match="gray.png: annotation mode is L"):
        read_palette_indices(tmp_path / "gray.png", (4, 4), 4)
    seven = Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4) % 8, mode="P")
    seven.putpalette(list(range(256)) * 3)
    seven.save(tmp_path / "seven.png")
    with pytest.raises(NucsegInputError, match="seven.png: class 7 beyond the 4 classes"):
        read_palette_indices(tmp_path / "seven.png", (4, 4), 4)


def test_class_scores_by_hand():
    truth = np.array([[0, 0, 1, 1], [2, 2, 2, 3]])
    guess = np.array([[0, 1, 1, 1], [2, 2, 0, 0]])
    table = class_scores(truth, guess, CLASSES).set_index("class")
    assert table.dice["background"] == pytest.approx(2 * 1 / (2 + 3), abs=1e-5)
    assert table.iou["stroma"] == pytest.approx(2 / 3, abs=1e-5)
    assert table.dice["tumour"] == pytest.approx(2 * 2 / (3 + 2), abs=1e-5)
    assert table.dice["necrosis"] == 0 and table.iou["necrosis"] == 0
    assert table.iou["mean"] == pytest.approx(np.mean([1 / 4, 2 / 3, 2 / 3, 0]), abs=1e-5)


def test_softmax_losses_by_hand():
    onehot = torch.from_numpy(one_hot(np.array([[0, 1]]), 2))[None]  # 1 x 2 x 1 x 2
    certain = 20 * (2 * onehot - 1)
    assert cross_entropy_loss(certain, onehot) < 1e-6
    even = torch.zeros_like(onehot)
    assert cross_entropy_loss(even, onehot) == pytest.approx(np.log(2))
    # probabilities 1/2 everywhere: per class (2 * 0.5 + s) / (1 + 1 + s), s = 1 -> 2/3
    assert multiclass_dice_loss(even, onehot, smooth=1.0) == pytest.approx(1 - 2 / 3)
    with pytest.raises(NucsegInputError, match="'bce' is not a softmax loss"):
        LossConfig(terms={"bce": 1.0}).softmax_loss(even, onehot)


def test_softmax_head_has_one_channel_per_class():
    model = build_model(ModelConfig(classes=4, in_channels=3, base_width=4, depth=2))
    assert model.config.heads == ("classes",)
    assert model(torch.zeros(1, 3, 32, 32)).masks.shape == (1, 4, 32, 32)
    with pytest.raises(NucsegInputError, match="needs decoder: shared"):
        ModelConfig(classes=4, decoder="separate")


def test_softmax_training_on_the_shared_loop(tiles, tmp_path):
    arrays, split = prepare(tiles / "images", tiles / "masks", 0.2, 0)
    table = train_model(
        train_data(arrays, split, 0.15, 0),
        ModelConfig(classes=4, base_width=4, depth=2, dropout=0.2, block_order="conv-bn-act"),
        TrainConfig(epochs=2, steps_per_epoch=2, batch_size=2, crop=32, seed=0, device="cpu"),
        TrainPaths.in_folder(tmp_path / "model"),
        loss=LossConfig(terms={"cross_entropy": 1.0, "multiclass_dice": 1.0}),
        validation=miou_validation(),
    )
    assert {"loss_classes", "valid_miou"} <= set(table.columns)
    assert np.isfinite(table.loss_classes).all() and table.valid_miou.between(0, 1).all()
