"""The real DSB2018 slice the demo ships: it reads end to end, its solution decodes to its
masks, and the shipped model never trained on its test images."""

import numpy as np
import pandas as pd
import pytest
from helpers import REPO, SHIPPED_MODEL

from nucseg.io.images import read_image
from nucseg.io.kaggle import list_stage1, read_mask_labels, read_solution_csv
from nucseg.io.sources import list_source
from nucseg.normalize import detect_category

SLICE = REPO / "resources" / "dsb2018_slice"
REALDATA = REPO.parent / "shared" / "realdata" / "dsb2018" / "stage1_train"


def test_the_slice_reads_through_the_kaggle_reader_as_listed():
    ids = pd.read_csv(SLICE / "ids.tsv", sep="\t")
    train = list_source("kaggle_stage1", SLICE / "stage1_train")
    assert sorted(i.image_id for i in train) == sorted(ids[ids.part == "train"].id)
    for item in train[::8]:  # every 8th: reading all 47 takes a while
        image = read_image(item.image_path)
        row = ids.set_index("id").loc[item.image_id]
        assert f"{image.shape[0]}x{image.shape[1]}" == row["size"]
        assert detect_category(image) == row["category"]
        assert item.read_labels(image.shape[:2]).max() > 0
    test = list_stage1(SLICE / "stage1_test", require_masks=False)
    assert sorted(e.image_id for e in test) == sorted(ids[ids.part == "test"].id)
    assert set(ids[ids.part == "test"].category) == {"fluorescence", "histology", "brightfield"}


def test_the_solution_csv_decodes_to_the_test_images_masks():
    solution = read_solution_csv(SLICE / "stage1_solution.csv")
    for entry in list_stage1(SLICE / "stage1_test", require_masks=False):
        image = read_image(entry.image_path)
        assert solution[entry.image_id].shape == image.shape[:2]
        assert solution[entry.image_id].max() > 0
        if REALDATA.is_dir():  # the original masks, where the real data is at hand
            masks = sorted((REALDATA / entry.image_id / "masks").glob("*.png"))
            original = read_mask_labels(tuple(masks), image.shape[:2])
            assert np.array_equal(original > 0, solution[entry.image_id] > 0)
            assert original.max() == solution[entry.image_id].max()


@pytest.mark.skipif(not SHIPPED_MODEL.is_dir(), reason=f"no shipped model in {SHIPPED_MODEL}")
def test_the_shipped_model_never_trained_on_the_demo_test_images():
    split = pd.read_csv(SHIPPED_MODEL / "split.tsv", sep="\t").set_index("id").side
    test_ids = [e.image_id for e in list_stage1(SLICE / "stage1_test", require_masks=False)]
    # held out, or left out of its dataset version altogether: never trained on
    assert all(split.get(i, "left out") in ("valid", "left out") for i in test_ids)
    assert split.eq("train").sum() > 100  # (the split of a real training run)
