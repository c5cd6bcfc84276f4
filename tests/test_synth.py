import hashlib

import numpy as np
import pandas as pd

from nucseg.io.images import read_image
from nucseg.io.kaggle import list_stage1, read_mask_labels, read_solution_csv
from nucseg.synth.nuclei import KINDS, SynthConfig, generate, write_demo_sources

SMALL = {"shapes": ((64, 80), (48, 48)), "shape_weights": (0.5, 0.5)}


def _digest(folder):
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_same_seed_gives_identical_images_and_other_seed_differs():
    first = generate(SynthConfig(n_images=3, seed=5, **SMALL), "train")
    again = generate(SynthConfig(n_images=3, seed=5, **SMALL), "train")
    other = generate(SynthConfig(n_images=3, seed=6, **SMALL), "train")
    for a, b in zip(first, again, strict=True):
        assert a.image_id == b.image_id
        np.testing.assert_array_equal(a.pixels, b.pixels)
        np.testing.assert_array_equal(a.instance_labels, b.instance_labels)
    assert not np.array_equal(first[0].pixels, other[0].pixels)


def test_ids_look_like_kaggle_ids():
    (image,) = generate(SynthConfig(n_images=1, seed=1, **SMALL), "train")
    assert len(image.image_id) == 64 and int(image.image_id, 16) >= 0


def test_all_kinds_appear_with_their_appearance():
    images = generate(SynthConfig(n_images=40, seed=3, **SMALL), "train")
    kinds = {i.kind for i in images}
    assert kinds == set(KINDS)
    for image in images:
        rgb = image.pixels[..., :3].astype(float)
        inside, outside = (
            rgb[image.instance_labels > 0].mean(),
            rgb[image.instance_labels == 0].mean(),
        )
        if image.kind == "fluorescence":
            assert inside > outside  # bright nuclei on dark
        else:
            assert inside < outside  # dark/purple nuclei on light
    assert any(i.pixels.ndim == 3 and i.pixels.shape[2] == 4 for i in images)  # RGBA like Kaggle


def test_touching_nuclei_exist():
    images = generate(SynthConfig(n_images=5, seed=3, **SMALL), "train")
    from nucseg.targets import contact_pixels

    assert sum(contact_pixels(i.instance_labels).sum() for i in images) > 0


def test_written_layout_reads_back_exactly(tmp_path):
    write_demo_sources(tmp_path, n_train=2, n_test=2, seed=9, **SMALL)
    train = list_stage1(tmp_path / "stage1_train", require_masks=True)
    originals = {i.image_id: i for i in generate(SynthConfig(n_images=2, seed=9, **SMALL), "train")}
    for entry in train:
        image = read_image(entry.image_path)
        original = originals[entry.image_id]
        np.testing.assert_array_equal(image, original.pixels)
        labels = read_mask_labels(entry.mask_paths, image.shape[:2], overlap="error")
        assert labels.max() == original.instance_labels.max()
        assert ((labels > 0) == (original.instance_labels > 0)).all()
    test = list_stage1(tmp_path / "stage1_test", require_masks=False)
    assert all(not entry.mask_paths for entry in test)
    solution = read_solution_csv(tmp_path / "stage1_solution.csv")
    assert sorted(solution) == sorted(e.image_id for e in test)
    table = pd.read_csv(tmp_path / "stage1_solution.csv")
    assert list(table.columns) == ["ImageId", "EncodedPixels", "Height", "Width"]


def test_writing_is_byte_reproducible(tmp_path):
    write_demo_sources(tmp_path / "a", n_train=2, n_test=1, seed=4, **SMALL)
    write_demo_sources(tmp_path / "b", n_train=2, n_test=1, seed=4, **SMALL)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
