import json
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
from helpers import REPO, SHIPPED_MODEL
from scipy import ndimage as ndi

from nucseg import NucsegInputError, Segmenter
from nucseg.checkpoints import save_checkpoint
from nucseg.models import ModelConfig, build_model
from nucseg.postprocess import PostprocessConfig
from nucseg.synth.nuclei import SynthConfig, camera_frame, generate


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A model folder as shipped: weights, tuned thresholds, prediction settings."""
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    save_checkpoint(
        build_model(ModelConfig(arch="camunet", base_width=4, depth=2)), folder / "model.pt"
    )
    thresholds = PostprocessConfig(mask_threshold=0.45, marker_threshold=0.55, split_h=0)
    (folder / "thresholds.json").write_text(json.dumps({"postprocess": asdict(thresholds)}))
    (folder / "predict.json").write_text(json.dumps({"tta_views": [0, 5], "scales": [1.0, 0.5]}))
    return folder


@pytest.fixture(scope="module")
def image():
    config = SynthConfig(
        n_images=1, seed=2, kind_weights=(1, 0, 0), shapes=((64, 72),), shape_weights=(1.0,)
    )
    return generate(config, "s")[0].pixels


def test_a_folder_loads_with_its_own_thresholds_and_settings(folder):
    seg = Segmenter.from_folder(folder, device="cpu")
    assert seg.thresholds.mask_threshold == 0.45 and seg.predict.views == (0, 5)
    assert seg.predict.scales == (1.0, 0.5)
    overridden = Segmenter.from_folder(folder, views=[0], scales=[1], device="cpu")
    assert overridden.predict.views == (0,) and overridden.predict.scales == (1.0,)


def test_an_array_of_any_depth_is_segmented_in_one_call(folder, image):
    seg = Segmenter.from_folder(folder, device="cpu")
    maps = seg.probabilities(image)
    assert maps.shape == (3, 64, 72) and maps.dtype == np.float32
    labels = seg.segment(image)
    assert labels.shape == (64, 72) and labels.dtype == np.int32
    deep = camera_frame(image, np.random.default_rng(0))  # the same picture, 16-bit
    assert seg.segment(deep).shape == (64, 72)
    many = list(seg.segment_many([image, image[..., :3], deep.astype(np.float32)]))
    assert len(many) == 3 and np.array_equal(many[0], labels)


def test_an_ensemble_averages_its_members(folder, image):
    # one checkpoint brings its folder's settings; an ensemble takes them as given
    one = Segmenter.from_models([folder / "model.pt"], device="cpu")
    two = Segmenter.from_models(
        [folder / "model.pt"] * 2, views=[0, 5], scales=[1, 0.5], weights=[1, 3], device="cpu"
    )
    np.testing.assert_allclose(one.probabilities(image), two.probabilities(image), atol=1e-6)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((3, 64, 64), np.uint16), "shape \\(3, 64, 64\\) is not H x W"),
        (np.zeros((64, 64), np.complex64), "dtype complex64 is not an image"),
        (np.zeros((4, 64), np.uint8), "4x64 is below 8 x 8"),
        (np.full((16, 16), np.nan, np.float32), "NaN or infinite"),
    ],
)
def test_an_array_it_cannot_take_is_named_in_one_line(folder, array, message):
    with pytest.raises(NucsegInputError, match=message):
        Segmenter.from_folder(folder, device="cpu").segment(array)


def test_predict_segments_every_frame_of_a_time_lapse_as_an_image(folder, image, tmp_path):
    import tifffile

    from nucseg.inference import predict_images
    from nucseg.submission import read_submission

    frames = np.stack([image[..., 0], image[::-1, :, 0], image[:, ::-1, 0]])
    tifffile.imwrite(tmp_path / "movie.tif", frames, imagej=True, metadata={"axes": "TYX"})
    seg = Segmenter.from_folder(folder, device="cpu")
    counts = predict_images(seg, [tmp_path / "movie.tif"], tmp_path / "out")
    assert list(counts) == ["movie_t0", "movie_t1", "movie_t2"]
    decoded = read_submission(tmp_path / "out" / "submission.csv", dict.fromkeys(counts, (64, 72)))
    with tifffile.TiffFile(tmp_path / "out" / "movie.tif") as tif:  # one label stack for Fiji
        assert tif.is_imagej and tif.series[0].axes == "TYX"
        stack = tif.asarray()
    assert stack.shape == (3, 64, 72)
    for k, frame in enumerate(frames):
        np.testing.assert_array_equal(stack[k], seg.segment(frame))
        np.testing.assert_array_equal(decoded[f"movie_t{k}"] > 0, stack[k] > 0)
    written = sorted(p.name for p in (tmp_path / "out").iterdir())  # the labels' spool is gone
    assert written == ["measurements.csv", "movie.tif", "submission.csv", "summary.csv"]


def test_a_stack_that_fails_midway_leaves_no_label_spool(folder, image, tmp_path, monkeypatch):
    """A stack's labels wait in a temporary file beside the outputs (not in memory) until
    its last plane; a failure on the way removes it and writes no label stack."""
    import tifffile

    from nucseg.inference import predict_images

    frames = np.stack([image[..., 0]] * 3)
    tifffile.imwrite(tmp_path / "movie.tif", frames, imagej=True, metadata={"axes": "TYX"})
    seg = Segmenter.from_folder(folder, device="cpu")
    segment, calls = seg.segment, []

    def fail_on_the_third_plane(plane, name):
        calls.append(name)
        if len(calls) == 3:
            raise MemoryError("out of memory")
        return segment(plane, name=name)

    monkeypatch.setattr(seg, "segment", fail_on_the_third_plane)
    with pytest.raises(MemoryError):
        predict_images(seg, [tmp_path / "movie.tif"], tmp_path / "out", outputs=("tif",))
    assert list((tmp_path / "out").iterdir()) == []


def test_a_hyperstacks_labels_keep_its_time_and_depth_axes(folder, image, tmp_path):
    """A TZCYX hyperstack's nuclear channel gives a TZYX label hyperstack that overlays it;
    a 2-D image of the same stem would overwrite it, and is refused before any output."""
    import tifffile

    from nucseg.inference import predict_images

    planes = [image[..., 0], image[::-1, :, 0], image[:, ::-1, 0]] * 2
    hyper = np.stack([np.stack([p, 255 - p]) for p in planes]).reshape(2, 3, 2, 64, 72)
    tifffile.imwrite(tmp_path / "cells.tif", hyper, imagej=True, metadata={"axes": "TZCYX"})
    seg = Segmenter.from_folder(folder, device="cpu")
    predict_images(seg, [tmp_path / "cells.tif"], tmp_path / "out", channel=0)
    with tifffile.TiffFile(tmp_path / "out" / "cells.tif") as tif:
        assert tif.series[0].axes == "TZYX"
        stack = tif.asarray()
    assert stack.shape == (2, 3, 64, 72)
    np.testing.assert_array_equal(stack[1, 2], seg.segment(planes[5]))
    (tmp_path / "two").mkdir()
    tifffile.imwrite(tmp_path / "two" / "cells.tiff", image[..., 0])
    with pytest.raises(NucsegInputError, match="would both write cells.tif"):
        predict_images(
            seg,
            [tmp_path / "cells.tif", tmp_path / "two" / "cells.tiff"],
            tmp_path / "o2",
            channel=0,
        )
    assert not (tmp_path / "o2").exists()


def test_a_folder_without_weights_is_named(tmp_path):
    with pytest.raises(NucsegInputError, match="model.pt: checkpoint not found"):
        Segmenter.from_folder(tmp_path)


def test_a_known_nucleus_diameter_replaces_the_scale_search(folder, tmp_path):
    (tmp_path / "model.pt").write_bytes((folder / "model.pt").read_bytes())
    settings = {"tta_views": [0], "scales": [1.0, 0.5, 0.33], "nucleus_diameter": 20.0}
    settings["enlarge_below"] = 14
    (tmp_path / "predict.json").write_text(json.dumps(settings))
    seg = Segmenter.from_folder(tmp_path, diameter=40, device="cpu")
    assert seg.predict.scales == (0.5,)  # nuclei twice the learned size: shrunk once
    assert seg.predict.enlarge_below == 0.0  # the size is known: nothing else enlarges
    image = np.zeros((64, 64), np.uint8)
    assert seg.segment(image, diameter=10).shape == (64, 64)
    with pytest.raises(NucsegInputError, match="--diameter: 0 is not a positive size"):
        seg.segment(image, diameter=0)
    with pytest.raises(NucsegInputError, match="--diameter and --scales both set"):
        Segmenter.from_folder(tmp_path, diameter=40, scales=[1.0], device="cpu")
    with pytest.raises(NucsegInputError, match="records no nucleus_diameter"):
        Segmenter.from_folder(folder, diameter=40, device="cpu")


def test_the_folder_s_scale_search_threshold_holds_unless_scales_are_given(folder, tmp_path):
    (tmp_path / "model.pt").write_bytes((folder / "model.pt").read_bytes())
    settings = {"scales": [1.0, 0.5, 0.33], "search_from": 32, "enlarge_below": 14}
    (tmp_path / "predict.json").write_text(json.dumps(settings))
    own = Segmenter.from_folder(tmp_path, device="cpu").predict
    assert (own.search_from, own.enlarge_below) == (32.0, 14.0)
    given = Segmenter.from_folder(tmp_path, scales=[1.0, 0.5], device="cpu").predict
    assert (given.scales, given.search_from, given.enlarge_below) == ((1.0, 0.5), 0.0, 0.0)


def test_a_folder_s_gate_per_category_meets_each_image_s_detected_category(
    folder, tmp_path, monkeypatch
):
    """predict.json's ``enlarge_below`` per category reaches prediction with the category
    normalisation detected: H&E colours are histology, a dark field of bright spots is
    fluorescence."""
    import nucseg.segmenter

    (tmp_path / "model.pt").write_bytes((folder / "model.pt").read_bytes())
    gates = {"fluorescence": 14, "histology": 24}
    (tmp_path / "predict.json").write_text(json.dumps({"enlarge_below": gates}))
    seg = Segmenter.from_folder(tmp_path, device="cpu")
    assert seg.predict.enlarge_below == {"fluorescence": 14.0, "histology": 24.0}
    seen = []

    def recorded(model, pixels, device, config, category=None):
        seen.append(category)
        return np.zeros((model.config.out_channels, *pixels.shape[-2:]), np.float32)

    monkeypatch.setattr(nucseg.segmenter, "predict_probability", recorded)
    rng = np.random.default_rng(0)
    stained = np.stack([rng.integers(150, 230, (48, 48))] * 3, axis=-1).astype(np.uint8)
    stained[..., 1] -= 90  # pink-purple: red and blue above green
    spots = rng.integers(0, 12, (48, 48)).astype(np.uint8)
    spots[10:18, 10:18] = 200
    seg.segment(stained), seg.segment(spots)
    assert seen == ["histology", "fluorescence"]


def test_a_flat_image_gives_no_nuclei_and_a_warning(folder, caplog):
    seg = Segmenter.from_folder(folder, device="cpu")
    for flat in (np.full((32, 40), 33_000, np.uint16), np.full((32, 40), 1e38, np.float32)):
        caplog.clear()
        assert seg.segment(flat, name="frame.tif").max() == 0
        assert "frame.tif: every pixel is" in caplog.text and "no contrast" in caplog.text


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_a_single_bright_pixel_or_a_huge_range_does_not_break_normalisation(dtype):
    """One hot pixel on a camera offset: the percentiles are flat, nothing is divided by
    zero, and the shipped model finds nothing."""
    seg = Segmenter.from_folder(SHIPPED_MODEL, views=[0], scales=[1.0], device="cpu")
    frame = np.full((48, 64), 33_000, dtype)
    frame[20, 30] = 65_535 if dtype == np.uint16 else 3e38
    assert seg.segment(frame).max() == 0


def test_a_compiled_segmenter_gives_the_maps_of_the_eager_one(folder, image):
    """torch.compile (dynamic shapes: the 2 views and both scales of the folder, and a
    second image size, through one compilation) changes speed, not results."""
    eager = Segmenter.from_folder(folder, device="cpu")
    compiled = eager.compiled()
    assert compiled.predict.compile and not eager.predict.compile
    for pixels in (image, image[:40, :56]):
        assert np.allclose(compiled.probabilities(pixels), eager.probabilities(pixels), atol=0.02)


def dense_fluorescence_crop() -> tuple[np.ndarray, np.ndarray]:
    """``(image, labels)``: 128² of touching fluorescent nuclei (22, two thirds of the
    pixels) from the shipped slice: its median is a nucleus gray, so the statistics call it
    brightfield."""
    from nucseg.evaluation import EvaluationSet
    from nucseg.normalize import detect_category

    train = EvaluationSet("slice", "kaggle_stage1", REPO / "resources/dsb2018_slice/stage1_train")
    ((_, image, labels),) = train.images(lambda image_id: image_id.startswith("9ebcfaf2"))
    window = (slice(20, 148), slice(170, 298))
    crop, truth = image[window], labels[window]
    assert detect_category(crop) == "brightfield" and (truth > 0).mean() > 0.6
    return crop, truth


def test_only_images_without_a_light_background_are_read_both_ways():
    """The gate before the network is asked: the shipped slice's real brightfield test
    images have the compact light background of brightfield, the dense crop has not."""
    from nucseg.evaluation import EvaluationSet
    from nucseg.normalize import LIGHT_BACKGROUND_SHARE, dark_end_share, detect_category

    slice_ = REPO / "resources/dsb2018_slice"
    test = EvaluationSet(
        "slice", "kaggle_stage1", slice_ / "stage1_test", labels_csv=slice_ / "stage1_solution.csv"
    )
    brightfield = [i for _, i, _ in test.images() if detect_category(i) == "brightfield"]
    assert len(brightfield) == 2
    assert all(dark_end_share(i) >= LIGHT_BACKGROUND_SHARE for i in brightfield)
    assert dark_end_share(dense_fluorescence_crop()[0]) < LIGHT_BACKGROUND_SHARE


def test_fluorescence_whose_nuclei_cover_most_of_the_image_is_not_inverted():
    """Inverted, the crop's dark gaps would be the nuclei: the shipped model reads it both
    ways and keeps fluorescence."""
    from nucseg.metrics import dsb_score

    crop, truth = dense_fluorescence_crop()
    seg = Segmenter.from_folder(SHIPPED_MODEL, views=[0], device="cpu")
    settled = seg.segment(crop)
    assert dsb_score(truth, settled) > 0.5 and settled.max() >= 18  # of 22 nuclei
    inverted = replace(seg, predict=replace(seg.predict, check_polarity=False))
    assert dsb_score(truth, inverted.segment(crop)) < 0.1


def nuclei_and_cytoplasm_overlay() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(overlay, nuclear plane, labels)``: a real gray fluorescence image of the shipped
    slice (not in dsb36's training) as an RGB overlay of two stains, its nuclei in blue and
    a diffuse stain around them in green, as microscopy software exports DAPI + phalloidin."""
    from nucseg.evaluation import EvaluationSet

    slice_ = REPO / "resources/dsb2018_slice"
    test = EvaluationSet(
        "slice", "kaggle_stage1", slice_ / "stage1_test", labels_csv=slice_ / "stage1_solution.csv"
    )
    ((_, image, labels),) = test.images(lambda image_id: image_id.startswith("00071198"))
    nuclei = image[..., 0] if image.ndim == 3 else image
    stain = 0.8 * ndi.gaussian_filter(ndi.grey_dilation(nuclei.astype(np.float32), size=9), 4)
    overlay = np.stack([np.zeros_like(nuclei), np.rint(stain).astype(nuclei.dtype), nuclei], -1)
    return overlay, nuclei, labels


def test_a_stain_overlay_is_segmented_as_its_nuclear_blue_plane():
    """Read as its brightest plane, the stain around the nuclei joins them; the shipped
    model is more confident of the blue plane alone and keeps that reading."""
    from nucseg.metrics import dsb_score

    overlay, nuclei, truth = nuclei_and_cytoplasm_overlay()
    seg = Segmenter.from_folder(SHIPPED_MODEL, views=[0], device="cpu")
    as_blue = seg.segment(overlay)
    np.testing.assert_array_equal(as_blue, seg.segment(nuclei))
    brightest = replace(seg, predict=replace(seg.predict, check_blue=False)).segment(overlay)
    assert dsb_score(truth, as_blue) > dsb_score(truth, brightest) + 0.3  # 0.49 against 0.04


@pytest.mark.parametrize(
    "weights, read_twice",
    [
        ((1.0, 1.0, 1.0), False),  # gray as RGB
        ((1.0, 0.8, 0.15), False),  # a yellow tint: blue a few coarse levels
        ((0.0, 0.8, 1.0), False),  # cyan: blue is the brightest plane everywhere
        ((1.0, 0.2, 0.8), True),  # magenta: blue spans 80 % of the brightest plane
    ],
)
def test_only_a_blue_plane_of_its_own_is_read_as_the_nuclear_stain(weights, read_twice):
    from nucseg.predict import distinct_blue

    gray = np.random.default_rng(0).integers(0, 256, (32, 32)).astype(np.float32)
    tinted = np.stack([np.rint(w * gray) for w in weights], -1).astype(np.uint8)
    assert distinct_blue(tinted) == read_twice
    assert not distinct_blue(gray.astype(np.uint8))
    assert distinct_blue(nuclei_and_cytoplasm_overlay()[0])


def test_the_workflow_s_prediction_jobs_settle_images_that_read_two_ways(tmp_path):
    """The dataset's categories are the statistics' (no model); a prediction job reads the
    images it calls brightfield or fluorescence again and lets its model settle them: the
    dense crop as fluorescence, the stain overlay as its blue plane, a gray fluorescence
    image as it is; H&E is not read."""
    from nucseg.io.images import write_image
    from nucseg.normalize import NormalizeConfig, normalize_image
    from nucseg.predict import PredictConfig, load_for_prediction
    from nucseg.prediction_jobs import settle_readings

    crop, _ = dense_fluorescence_crop()
    overlay, nuclei, _ = nuclei_and_cytoplasm_overlay()
    config = PredictConfig(views=(0,))
    model, normalize, device, config = load_for_prediction(SHIPPED_MODEL / "model.pt", config)
    assert normalize == NormalizeConfig()
    sources = {"dense": crop, "overlay": overlay, "gray": nuclei}
    for name, image in sources.items():
        write_image(image, tmp_path / f"{name}.png")
    prepared = {name: normalize_image(image, normalize) for name, image in sources.items()}
    images = {name: pixels.copy() for name, (pixels, _) in prepared.items()}
    images["tissue"] = prepared["gray"][0].copy()
    categories = {name: category for name, (_, category) in prepared.items()}
    assert categories == {"dense": "brightfield", "overlay": "fluorescence", "gray": "fluorescence"}
    categories["tissue"] = "histology"
    paths = {name: tmp_path / f"{name}.png" for name in sources} | {"tissue": tmp_path / "no.png"}
    settled = settle_readings(model, images, categories, paths, normalize, device, config)
    assert settled == categories | {"dense": "fluorescence"}
    as_fluorescence, _ = normalize_image(crop, normalize, category="fluorescence")
    assert np.array_equal(images["dense"], as_fluorescence)
    assert np.array_equal(images["overlay"], prepared["gray"][0])  # the blue plane's reading
    assert np.array_equal(images["gray"], prepared["gray"][0])
    assert np.array_equal(images["tissue"], prepared["gray"][0])  # not read: H&E


def test_the_dim_pass_adds_only_regions_the_plain_map_did_not_see():
    """A lifted region the plain map held under the threshold is taken (every head), specks
    of an unsure plain map inside it too; one it had found keeps its plain outline, and so
    does a found nucleus that the lifted map joins to a faint area beside it; one far
    smaller than the plain map's objects is left out."""
    from nucseg.predict import rescue_dim_nuclei

    plain, lifted = np.zeros((3, 40, 90), np.float32), np.zeros((3, 40, 90), np.float32)
    plain[:, 5:15, 5:15] = 0.9  # found by both, wider when lifted
    lifted[:, 4:16, 4:16] = 0.8
    lifted[:, 5:15, 30:40] = 0.7  # dim: the plain map has 0.05 there, a speck of 0.6
    plain[:, 5:15, 30:40] = 0.05
    plain[:, 9:11, 34:36] = 0.6
    lifted[:, 30:33, 30:33] = 0.9  # 9 pixels against a typical 100: noise
    plain[:, 5:15, 60:70] = 0.95  # found, and joined to faint blobs when lifted
    lifted[:, 5:35, 55:85] = 0.8  # (its plain mean, 0.11, is far under the threshold)
    rescued = rescue_dim_nuclei(plain, lifted)
    np.testing.assert_array_equal(rescued[:, :, :20], plain[:, :, :20])
    np.testing.assert_array_equal(rescued[:, 5:15, 30:40], lifted[:, 5:15, 30:40])
    assert rescued[:, 30:33, 30:33].max() == 0
    np.testing.assert_array_equal(rescued[:, :, 50:], plain[:, :, 50:])
    assert rescue_dim_nuclei(plain, np.zeros_like(lifted)) is plain


def test_the_dim_pass_runs_only_where_the_plain_map_shows_a_trace():
    """The gate opens for a nucleus-sized region the plain map held at a few hundredths, at
    a thousandth or above the mask threshold but short of sure (0.7), alone or a few
    pixels beside a found nucleus; not for a clean background, a speck, or a faint rim
    around a found nucleus."""
    from nucseg.predict import has_dim_candidates

    plain = np.zeros((3, 40, 60), np.float32)
    plain[:, 5:15, 5:15] = 0.9
    plain[:, 3:17, 3:17] = np.maximum(plain[:, 3:17, 3:17], 0.03)  # its faint rim
    plain[:, 30:32, 30:32] = 0.04  # 4 pixels against a typical 100
    assert not has_dim_candidates(plain)
    assert not has_dim_candidates(np.zeros_like(plain))
    for trace in (0.03, 0.001, 0.7):  # a dim nucleus's trace, on its own
        alone = plain.copy()
        alone[:, 5:15, 30:40] = trace
        assert has_dim_candidates(alone)
    beside = plain.copy()  # 3 px from the found nucleus, its trace joined to that one's
    beside[:, 5:15, 18:28] = 0.1
    beside[:, 5:15, 15:18] = 0.02
    assert has_dim_candidates(beside)


def dim_and_bright_disks(dim_level: float) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """A fluorescence frame of 25 disks of radius 10 on a checkerboard, the dark squares'
    nuclei at ``dim_level`` of the bright ones' height above the background; its truth and
    the dim ones' labels."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:256, :256]
    truth, image, dim = np.zeros((256, 256), np.int32), np.full((256, 256), 10.0), []
    for index in range(25):
        row, col = divmod(index, 5)
        disk = (yy - 26 - 51 * row) ** 2 + (xx - 26 - 51 * col) ** 2 <= 100
        truth[disk] = index + 1
        image[disk] = 10 + 240 * (dim_level if (row + col) % 2 else 1.0)
        dim += [index + 1] if (row + col) % 2 else []
    image = ndi.gaussian_filter(image, 1.5) + rng.normal(0, 1.5, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), truth, dim


def dim_nuclei_close_beside_bright_ones(gap: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """A fluorescence frame of 15 pairs of disks of radius 10, each a bright nucleus and,
    ``gap`` pixels to its right, one at 4 % of its height; its truth and the dim ones'
    labels."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:256, :256]
    truth, image, dim = np.zeros((256, 256), np.int32), np.full((256, 256), 10.0), []
    for index in range(15):
        row, col = divmod(index, 3)
        for shift, level in ((0, 1.0), (20 + gap, 0.04)):
            disk = (yy - 26 - 51 * row) ** 2 + (xx - 30 - 80 * col - shift) ** 2 <= 100
            truth[disk] = truth.max() + 1
            image[disk] = 10 + 240 * level
            dim += [int(truth.max())] if level < 1 else []
    image = ndi.gaussian_filter(image, 1.5) + rng.normal(0, 1.5, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), truth, dim


def shipped_without_and_with_dim_pass(image: np.ndarray, truth: np.ndarray):
    """The shipped model's labels of ``image`` without and with its dim pass (on in its
    predict.json, power 0.5), and the true nuclei each finds (more than half covered)."""
    shipped = Segmenter.from_folder(SHIPPED_MODEL, device="cpu")
    assert shipped.predict.dim_gamma == 0.5
    plain = replace(shipped, predict=replace(shipped.predict, dim_gamma=0.0)).segment(image)
    rescued = shipped.segment(image)
    found = {
        name: {i for i in range(1, truth.max() + 1) if np.mean(labels[truth == i] > 0) > 0.5}
        for name, labels in (("plain", plain), ("rescued", rescued))
    }
    return plain, rescued, found


def test_the_shipped_model_finds_dim_nuclei_beside_bright_ones_with_its_dim_pass():
    """Nuclei at 3 % of their neighbours' brightness: the plain pass finds none of the 12,
    the shipped model's dim pass (its predict.json) all of them, the bright 13 as they
    were.  (At 4 % its plain map peaks at 0.72-0.82 there, the confidence filter drops
    them, and the pass adds the 8 whose peak stays under 0.8: docs/experiments.md, row 20.)"""
    image, truth, dim = dim_and_bright_disks(0.03)
    plain, rescued, found = shipped_without_and_with_dim_pass(image, truth)
    assert found["plain"] == set(range(1, 26)) - set(dim)
    assert found["rescued"] == set(range(1, 26))
    bright = np.isin(truth, list(found["plain"]))
    np.testing.assert_array_equal(rescued[bright] > 0, plain[bright] > 0)


def test_the_shipped_model_finds_dim_nuclei_a_few_pixels_from_bright_ones():
    """Each dim nucleus 3 px from a bright one: its faint trace in the plain map joins the
    bright one's, and the dim pass still runs and finds all 15, the bright ones as they
    were."""
    image, truth, dim = dim_nuclei_close_beside_bright_ones(gap=3)
    plain, rescued, found = shipped_without_and_with_dim_pass(image, truth)
    assert found["plain"] == set(range(1, 31)) - set(dim)
    assert found["rescued"] == set(range(1, 31))
    bright = np.isin(truth, list(found["plain"]))
    np.testing.assert_array_equal(rescued[bright] > 0, plain[bright] > 0)


def test_the_dim_pass_finds_dim_nuclei_under_a_16_bit_cameras_offset_and_noise():
    """The same frame as a 16-bit camera records it (offset 33,000, shot and read noise):
    its background sits above 0 after normalisation, and the lift, relative to it, still
    brings all 12 dim nuclei up (lifting the pixels as they are does not)."""
    image, truth, dim = dim_and_bright_disks(0.04)
    frame = camera_frame(image, np.random.default_rng(0))
    _, _, found = shipped_without_and_with_dim_pass(frame, truth)
    assert found["plain"] == set(range(1, 26)) - set(dim)
    assert found["rescued"] == set(range(1, 26))


def test_the_dim_pass_is_a_folder_setting_the_command_line_overrides(folder, tmp_path):
    (tmp_path / "model.pt").write_bytes((folder / "model.pt").read_bytes())
    (tmp_path / "predict.json").write_text(json.dumps({"dim_gamma": 0.5}))
    assert Segmenter.from_folder(tmp_path, device="cpu").predict.dim_gamma == 0.5
    assert Segmenter.from_folder(tmp_path, dim_gamma=0, device="cpu").predict.dim_gamma == 0
    with pytest.raises(NucsegInputError, match="dim_gamma: 2.0 is not in"):
        Segmenter.from_folder(tmp_path, dim_gamma=2.0, device="cpu")
    (tmp_path / "predict.json").write_text(json.dumps({"dim_gamma": -0.5}))
    with pytest.raises(NucsegInputError, match="dim_gamma: -0.5 is not in"):
        Segmenter.from_folder(tmp_path, device="cpu")


def test_a_shipped_folder_installed_for_the_workflow_brings_its_learned_size(
    folder, tmp_path, caplog
):
    """Workflow prediction leaves ``nucleus_diameter`` to each model: a shipped folder's
    checkpoint installed by the workflow records its predict.json's size, and loading for
    prediction fills it in; a checkpoint that records none is predicted without
    ``shrink_from`` (warned), and a size given in the settings wins."""
    from nucseg.checkpoints import read_checkpoint
    from nucseg.export import install_pretrained
    from nucseg.predict import PredictConfig, load_for_prediction

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "model.pt").write_bytes((folder / "model.pt").read_bytes())
    (shipped / "predict.json").write_text(json.dumps({"nucleus_diameter": 21.7}))
    install_pretrained(shipped, tmp_path / "installed.pt")
    installed = read_checkpoint(tmp_path / "installed.pt")
    original = read_checkpoint(shipped / "model.pt")["state_dict"]
    assert installed["nucleus_diameter"] == 21.7
    assert all(torch.equal(v, original[k]) for k, v in installed["state_dict"].items())
    config = PredictConfig(scales=(1.0, 0.5), shrink_from=90)
    assert load_for_prediction(tmp_path / "installed.pt", config).config.nucleus_diameter == 21.7
    given = replace(config, nucleus_diameter=30.0)
    assert load_for_prediction(tmp_path / "installed.pt", given).config.nucleus_diameter == 30.0
    with caplog.at_level("WARNING"):
        unrecorded = load_for_prediction(shipped / "model.pt", config).config
    assert unrecorded.shrink_from == 0 and "records no nucleus size" in caplog.text
