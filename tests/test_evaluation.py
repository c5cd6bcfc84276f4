import numpy as np
import torch

from nucseg.checkpoints import save_checkpoint
from nucseg.evaluation import EvaluationSet, evaluate_model, summarize_evaluation
from nucseg.io.images import read_image, write_png, write_tiff
from nucseg.models import ModelConfig, build_model
from nucseg.postprocess import PostprocessConfig
from nucseg.submission import write_submission
from nucseg.synth.nuclei import SynthConfig, generate


def _folder_set(root, n=3):
    """Generated fluorescence images in the ``folder`` layout (gray PNG + label TIFF)."""
    config = SynthConfig(
        n_images=n, seed=5, kind_weights=(1, 0, 0), shapes=((64, 80),), shape_weights=(1.0,)
    )
    root.mkdir()
    for k, item in enumerate(generate(config, "e")):
        gray = item.pixels[..., :3].max(axis=2) if item.pixels.ndim == 3 else item.pixels
        write_png(gray, root / f"img{k}.png")
        write_tiff(item.instance_labels.astype(np.uint16), root / f"img{k}_label.tif")
    return root


def test_camera_sets_give_16_bit_frames_of_the_same_nuclei(tmp_path):
    folder = _folder_set(tmp_path / "lab2")
    plain = list(EvaluationSet("lab2", "folder", folder).images())
    camera = list(EvaluationSet("lab2_16", "folder", folder, camera=True).images())
    assert [i for i, _, _ in plain] == [i for i, _, _ in camera] == ["img0", "img1", "img2"]
    for (_, image, labels), (_, frame, same_labels) in zip(plain, camera, strict=True):
        assert image.dtype == np.uint8 and frame.dtype == np.uint16 and frame.min() > 30_000
        np.testing.assert_array_equal(labels, same_labels)
    kept = list(EvaluationSet("lab2", "folder", folder).images(lambda i: i != "img1"))
    assert [i for i, _, _ in kept] == ["img0", "img2"]


def test_a_model_is_scored_per_image_and_summarised_per_set_and_category(tmp_path):
    folder = _folder_set(tmp_path / "lab2")
    torch.manual_seed(0)
    save_checkpoint(
        build_model(ModelConfig(arch="camunet", base_width=4, depth=2)), tmp_path / "m.pt"
    )
    sets = [
        EvaluationSet("lab2", "folder", folder),
        EvaluationSet.from_config("lab2_16", {"format": "folder", "path": folder, "camera": True}),
    ]
    per_image = evaluate_model(tmp_path / "m.pt", PostprocessConfig(), sets, device="cpu")
    assert len(per_image) == 6 and set(per_image.category) == {"fluorescence"}
    assert per_image.dsb.between(0, 1).all() and (per_image.n_true > 0).all()
    summary = summarize_evaluation(per_image)
    assert summary.set.tolist() == ["lab2", "lab2_16"] and summary.images.tolist() == [3, 3]
    assert summary.n_true.tolist() == [per_image.n_true[:3].sum()] * 2


def test_a_kaggle_test_folder_is_scored_with_its_solution_csv(tmp_path):
    """Kaggle's stage1_test layout has no masks/: the nuclei come from stage1_solution.csv."""
    folder = _folder_set(tmp_path / "lab2", n=2)
    test_dir = tmp_path / "stage1_test"
    expected = {}
    for k in range(2):
        image_id = f"id{k}"
        (test_dir / image_id / "images").mkdir(parents=True)
        (folder / f"img{k}.png").rename(test_dir / image_id / "images" / f"{image_id}.png")
        labels = read_image(folder / f"img{k}_label.tif")
        expected[image_id] = labels
    write_submission(expected, tmp_path / "solution.csv")
    spec = {"format": "kaggle_stage1", "path": str(test_dir), "camera": True}
    spec["labels_csv"] = str(tmp_path / "solution.csv")
    read = list(EvaluationSet.from_config("kaggle16", spec).images())
    assert [image_id for image_id, _, _ in read] == ["id0", "id1"]
    for image_id, frame, labels in read:
        assert frame.dtype == np.uint16
        assert labels.max() == len(np.unique(expected[image_id])) - 1
        np.testing.assert_array_equal(labels > 0, expected[image_id] > 0)
