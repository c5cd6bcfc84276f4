"""Ultrasound nerve task: layout, checks, metric, submission format, training on the shared loop."""

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from nucseg.augment import NO_AUGMENTATION, augment_batch
from nucseg.errors import NucsegInputError
from nucseg.io.images import read_image, write_tiff
from nucseg.io.ultrasound import list_train, write_nerve_layout
from nucseg.losses import LossConfig
from nucseg.metrics import dice
from nucseg.models import ModelConfig
from nucseg.nerve import (
    NerveDecision,
    decide,
    dice_validation,
    export_nerve_model,
    full_size_masks,
    load_nerve_folder,
    predict_folder,
    prepare_train,
    read_decision,
    read_nerve_submission,
    score_nerve,
    shapes_of_test_images,
    train_data,
    tune_decision,
    tune_on_validation,
    write_decision,
    write_nerve_submission,
)
from nucseg.synth.ultrasound import NerveSynthConfig, write_nerve_dataset
from nucseg.train import TrainConfig, TrainPaths, train_model

SMALL = NerveSynthConfig(subjects=3, images_per_subject=4, n_test=4, presence=0.5, seed=1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("nerve")
    write_nerve_dataset(root, SMALL)
    return root


def test_generator_writes_the_kaggle_layout(dataset):
    names = sorted(p.name for p in (dataset / "train").iterdir())
    assert len(names) == 2 * 3 * 4 and "1_1.tif" in names and "3_4_mask.tif" in names
    image, mask = read_image(dataset / "train/2_3.tif"), read_image(dataset / "train/2_3_mask.tif")
    assert image.shape == mask.shape == (420, 580) and image.dtype == mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 255}
    table = list_train(dataset / "train")
    assert list(table.id[:2]) == ["1_1", "1_2"] and set(table.subject) == {1, 2, 3}
    present = [read_image(p).any() for p in table["mask"]]
    assert 0 < sum(present) < len(present)  # both nerve and empty images
    assert sorted(p.name for p in (dataset / "test").iterdir()) == [
        f"{n}.tif" for n in (1, 2, 3, 4)
    ]
    assert (dataset / "test_solution.csv").read_text().startswith("img,pixels\n1,")


def test_dice_counts_empty_against_empty_as_one():
    a = np.array([[1, 1, 0, 0]], bool)
    b = np.array([[1, 0, 1, 0]], bool)
    assert dice(a, b) == 0.5
    assert dice(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 1.0
    assert dice(a, np.zeros_like(a)) == 0.0


def test_submission_is_img_pixels_with_one_based_column_major_runs(tmp_path):
    mask = np.zeros((420, 580), bool)
    mask[0:2, 0] = True  # pixels 1 and 2 (down the first column)
    mask[0, 1] = True  # pixel 421: first row of the second column
    write_nerve_submission({2: np.zeros((420, 580), bool), 1: mask}, tmp_path / "s.csv")
    assert (tmp_path / "s.csv").read_text() == "img,pixels\n1,1 2 421 1\n2,\n"
    masks = read_nerve_submission(tmp_path / "s.csv")
    assert np.array_equal(masks[1], mask) and not masks[2].any()
    scores = score_nerve(masks, {1: mask, 2: mask})
    assert scores.dice.tolist() == [1.0, 0.0, 0.5]  # image 2: empty truth, non-empty guess


def test_submission_with_another_header_is_refused(tmp_path):
    (tmp_path / "s.csv").write_text("ImageId,EncodedPixels\n1,\n")
    with pytest.raises(NucsegInputError, match="expected the header img,pixels"):
        read_nerve_submission(tmp_path / "s.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(NucsegInputError, match="empty.csv: not a readable img,pixels CSV"):
        read_nerve_submission(tmp_path / "empty.csv")


def test_presence_head_gates_the_mask_and_small_areas_are_dropped():
    probability = np.zeros((96, 128), np.float32)
    probability[30:60, 40:90] = 0.9
    decision = NerveDecision(threshold=0.5, presence_threshold=0.5, min_area=1500)
    assert decide(probability, 0.9, (420, 580), decision).sum() > 1500
    assert not decide(probability, 0.3, (420, 580), decision).any()  # no nerve, says presence
    tiny = np.zeros_like(probability)
    tiny[10:12, 10:12] = 0.9
    assert not decide(tiny, 0.9, (420, 580), decision).any()


def test_training_pairs_are_checked(tmp_path):
    write_tiff(np.zeros((420, 580), np.uint8), tmp_path / "1_1.tif")
    with pytest.raises(NucsegInputError, match="1_1.tif: no 1_1_mask.tif"):
        list_train(tmp_path)
    mask = np.zeros((420, 580), np.uint8)
    mask[5, 5], mask[6, 6] = 255, 7
    write_tiff(mask, tmp_path / "1_1_mask.tif")
    with pytest.raises(NucsegInputError, match="1_1_mask.tif: mask is not binary"):
        prepare_train(tmp_path, (48, 64), 0.2, 0)


def test_split_is_stratified_by_presence_and_training_reports_dice(dataset, tmp_path):
    arrays, split = prepare_train(dataset / "train", (48, 64), 0.25, 0)
    assert arrays["images"].shape == (12, 1, 48, 64) and arrays["full_masks"].shape[1:] == (
        420,
        580,
    )
    valid = split[split.side == "valid"]
    assert valid.present.any() and (~valid.present).any()
    net = ModelConfig(
        base_width=4, depth=2, activation="elu", block_order="conv-bn-act", presence_head=True
    )
    config = TrainConfig(epochs=2, steps_per_epoch=2, batch_size=4, crop=48, seed=0, device="cpu")
    table = train_model(
        train_data(arrays, split),
        net,
        config,
        TrainPaths.in_folder(tmp_path / "model"),
        loss=LossConfig(terms={"dice": 1.0}, presence_weight=0.5),
        validation=dice_validation(),
    )
    assert {"loss_presence", "valid_dice"} <= set(table.columns)
    assert table.valid_dice.between(0, 1).all()
    checkpoint = torch.load(tmp_path / "model/model.pt", weights_only=True)
    assert checkpoint["valid_dice"] == pytest.approx(table.valid_dice.max(), abs=1e-5)


def test_left_right_mirror_and_translation_augmentations():
    image = torch.zeros(1, 1, 16, 16)
    image[0, 0, 4, 2] = 1.0
    mirror_only = NO_AUGMENTATION.__class__(**{**NO_AUGMENTATION.__dict__, "hflip": True})
    seen = set()
    for seed in range(8):
        out, _ = augment_batch(
            torch.Generator().manual_seed(seed), image, image.clone(), mirror_only
        )
        seen.add(tuple(torch.nonzero(out[0, 0] > 0.5)[0].tolist()))
    assert seen == {(4, 2), (4, 13)}  # the pixel or its left-right mirror, never up-down
    shift = NO_AUGMENTATION.__class__(**{**NO_AUGMENTATION.__dict__, "translate": 3.0})
    out, _ = augment_batch(torch.Generator().manual_seed(0), image, image.clone(), shift)
    row, col = np.unravel_index(int(out[0, 0].argmax()), (16, 16))
    assert abs(row - 4) <= 3 and abs(col - 2) <= 3 and (row, col) != (4, 2)


def _palette_png(indices: np.ndarray, path):
    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 255, 255, 0, 255, 0, 0] + [0] * 759)
    image.save(path)


def test_usgra_folders_become_the_kaggle_layout_in_their_own_sizes(tmp_path):
    """Real usgra-seg layout: images/ + masks/ (palette: 1 nerve, 2 vessel) and test/."""
    rng = np.random.default_rng(0)
    sizes = {1: (64, 64), 2: (70, 64), 7: (80, 90)}
    for number, (h, w) in sizes.items():
        folder = tmp_path / "dataset" / ("test" if number == 7 else "")
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "masks").mkdir(exist_ok=True)
        gray = (
            rng.integers(0, 255, (h, w, 3), np.uint8)
            if number == 2
            else rng.integers(0, 255, (h, w), np.uint8)
        )
        Image.fromarray(gray).save(folder / "images" / f"{number:04d}.png")
        indices = np.zeros((h, w), np.uint8)
        indices[10:30, 10:40], indices[40:50, 5:15] = 1, 2  # a nerve and a vessel
        _palette_png(indices, folder / "masks" / f"{number:04d}.png")
    assert write_nerve_layout("usgra", tmp_path / "dataset", tmp_path / "out") == 2
    table = list_train(tmp_path / "out" / "train")
    assert table.id.tolist() == ["0_1", "0_2"]
    mask = read_image(table["mask"][1])
    assert mask.shape == (70, 64) and mask.sum() == 255 * 20 * 30  # the nerve, not the vessel
    assert read_image(table.image[1]).ndim == 2  # RGB averaged to gray
    shapes = shapes_of_test_images(tmp_path / "out" / "test")
    assert shapes == {7: (80, 90)}
    truth = read_nerve_submission(tmp_path / "out" / "test_solution.csv", shapes)
    assert truth[7].shape == (80, 90) and truth[7].sum() == 600
    arrays, split = prepare_train(tmp_path / "out" / "train", (32, 32), 0.5, 0)
    assert [m.shape for m in full_size_masks(arrays)] == [(64, 64), (70, 64)]
    with pytest.raises(NucsegInputError, match="not one of usgra"):
        write_nerve_layout("kaggle", tmp_path / "dataset", tmp_path / "other")


def test_the_decision_is_tuned_so_an_unsure_presence_head_still_finds_nerves():
    """A presence head that says 0.4 everywhere (as when trained briefly on a set with many
    empty images) would call every image empty at the default 0.5 gate; the validation
    search lowers the gate when the maps are right, and keeps it when they are not."""
    truth = np.zeros((84, 116), bool)
    truth[20:60, 30:90] = True
    right = np.zeros((42, 58), np.float32)
    right[10:30, 15:45] = 0.9
    maps, truths = [(right, 0.4)] * 3, [truth] * 3
    table = tune_decision(maps, truths)
    assert table.presence_threshold[0] <= 0.4 and table.dice[0] > 0.9
    empty = [np.zeros_like(truth)] * 3  # the same maps over images without a nerve
    table = tune_decision(maps, empty)
    best = NerveDecision(*table.iloc[0][["threshold", "presence_threshold", "min_area"]])
    assert table.dice[0] == 1.0 and not decide(right, 0.4, truth.shape, best).any()


def test_a_tuned_decision_is_written_and_read_back(tmp_path):
    decision = NerveDecision(threshold=0.4, presence_threshold=0.2, min_area=500)
    write_decision(decision, {"valid_dice_tuned": 0.9}, tmp_path / "decision.json")
    assert read_decision(tmp_path / "decision.json") == decision
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(NucsegInputError, match="bad.json: not a nerve decision file"):
        read_decision(tmp_path / "bad.json")


def test_the_kaggle_2016_files_as_shipped_read_and_predict(dataset, tmp_path):
    """Kaggle's own files are LZW-compressed TIFFs and most masks are empty: they read,
    train a step and predict every test image without error."""
    for part in ("train", "test"):
        (tmp_path / part).mkdir()
        for path in sorted((dataset / part).glob("*.tif")):
            tifffile.imwrite(tmp_path / part / path.name, read_image(path), compression="lzw")
    assert tifffile.TiffFile(tmp_path / "test" / "1.tif").pages[0].compression == 5  # LZW
    for mask in sorted((tmp_path / "train").glob("*_mask.tif"))[:8]:  # most masks empty
        tifffile.imwrite(mask, np.zeros((420, 580), np.uint8), compression="lzw")
    arrays, split = prepare_train(tmp_path / "train", (48, 64), 0.25, 0)
    assert not split.present[:8].any()
    net = ModelConfig(base_width=4, depth=2, block_order="conv-bn-act", presence_head=True)
    config = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=4, crop=48, seed=0, device="cpu")
    paths = TrainPaths.in_folder(tmp_path / "m")
    train_model(train_data(arrays, split), net, config, paths, validation=dice_validation())
    decision, scores = tune_on_validation(tmp_path / "m/model.pt", arrays, split, device="cpu")
    assert scores["valid_images"] == (split.side == "valid").sum()
    masks = predict_folder(tmp_path / "m/model.pt", tmp_path / "test", (48, 64), decision)
    assert sorted(masks) == [1, 2, 3, 4] and all(m.shape == (420, 580) for m in masks.values())
    # shipped as a folder that loads alone, and predicts the same
    write_decision(decision, scores, tmp_path / "m/decision.json")
    spec = {"input_size": [48, 64], "hflip_tta": True}
    export_nerve_model(tmp_path / "m", None, tmp_path / "nerve_x", spec, name="nerve_x", data="-")
    shipped = load_nerve_folder(tmp_path / "nerve_x")
    assert shipped.decision == decision and shipped.input_size == (48, 64)
    assert (
        "# nerve_x: ultrasound nerve segmentation" in (tmp_path / "nerve_x/README.md").read_text()
    )
    again = shipped.predict_folder(tmp_path / "test", device="cpu")
    assert sum((again[n] != masks[n]).sum() for n in masks) < 0.001 * 4 * 420 * 580  # float16
    with pytest.raises(NucsegInputError, match="not a nerve model folder"):
        load_nerve_folder(tmp_path / "m")
