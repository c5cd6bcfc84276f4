import numpy as np
import pytest
from helpers import REPO, build_version

from nucseg.evaluation import EvaluationSet
from nucseg.normalize import (
    NormalizeConfig,
    channel_mean,
    colour_channels,
    colour_planes,
    dark_end_share,
    detect_category,
    normalize_image,
    percentile_scale,
)
from nucseg.synth.nuclei import SynthConfig, camera_frame, generate


@pytest.fixture(scope="module")
def images():
    return generate(
        SynthConfig(n_images=30, seed=11, shapes=((96, 96),), shape_weights=(1.0,)), "train"
    )


def test_category_detection_matches_the_generator(images):
    agreement = np.mean([detect_category(i.pixels) == i.kind for i in images])
    assert agreement >= 0.9


def test_pale_histology_and_every_kind_are_told_apart():
    balanced = generate(
        SynthConfig(
            n_images=90, seed=77, kind_weights=(1, 1, 1), shapes=((96, 96),), shape_weights=(1.0,)
        ),
        "k",
    )
    wrong = [(i.kind, detect_category(i.pixels)) for i in balanced]
    wrong = [w for w in wrong if w[0] != w[1]]
    assert len(wrong) <= 1, wrong


def test_every_kind_becomes_bright_nuclei_on_dark_in_unit_range(images):
    for image in images:
        normalized, _ = normalize_image(image.pixels)
        assert normalized.dtype == np.float32
        assert normalized.shape == (1, *image.instance_labels.shape)
        assert 0.0 <= normalized.min() and normalized.max() <= 1.0
        inside = normalized[0][image.instance_labels > 0].mean()
        outside = normalized[0][image.instance_labels == 0].mean()
        assert inside > outside + 0.1, image.kind


def test_a_known_category_replaces_detection(images):
    """How prediction reads an image both ways (nucseg.predict.settle_reading): a dark
    field of bright nuclei normalised as brightfield turns them dark, as fluorescence bright."""
    fluorescent = next(i for i in images if i.kind == "fluorescence")
    nuclei = fluorescent.instance_labels > 0
    for category, sign in (("fluorescence", 1), ("brightfield", -1)):
        pixels, said = normalize_image(fluorescent.pixels, category=category)
        assert said == category
        assert sign * (pixels[0][nuclei].mean() - pixels[0][~nuclei].mean()) > 0.1
    with pytest.raises(ValueError, match="unknown category 'phase'"):
        normalize_image(fluorescent.pixels, category="phase")


def test_a_dark_background_is_compact_at_the_dark_end_with_any_offset(images):
    """Fluorescence's flat dark background makes the dark end of its gray levels compact
    (:func:`dark_end_share` near 0), as a 16-bit camera records it too; a flat image is
    0.5.  Real brightfield and dense fluorescence: tests/test_segmenter.py."""
    rng = np.random.default_rng(0)
    for image in (i for i in images if i.kind == "fluorescence"):
        assert dark_end_share(image.pixels) < 0.25
        assert dark_end_share(camera_frame(image.pixels, rng)) < 0.25
    assert dark_end_share(np.full((8, 8), 7, np.uint8)) == 0.5


def test_percentile_scaling_maps_percentiles_to_zero_and_one():
    channel = np.arange(1000, dtype=np.float32).reshape(10, 100)
    scaled = percentile_scale(channel, NormalizeConfig(low=10, high=90))
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    assert np.isclose(scaled.ravel()[500], (500 - 99.9) / (899.1 - 99.9), atol=1e-4)


def test_flat_image_becomes_zeros_not_nan():
    assert (percentile_scale(np.full((5, 5), 7.0)) == 0).all()


def test_sixteen_bit_and_gray_inputs_work():
    gray16 = (np.arange(64 * 64).reshape(64, 64) * 15).astype(np.uint16)
    normalized, category = normalize_image(gray16)
    assert category in ("fluorescence", "brightfield") and np.isfinite(normalized).all()


@pytest.mark.parametrize(
    "config",
    [NormalizeConfig(method="lab"), NormalizeConfig(clahe=True), NormalizeConfig(method="rgb")],
)
def test_lab_rgb_and_clahe_options_keep_nuclei_bright_in_unit_range(images, config):
    for image in images[:10]:
        normalized, _ = normalize_image(image.pixels, config)
        assert normalized.shape[0] == (3 if config.method == "rgb" else 1)
        assert 0.0 <= normalized.min() and normalized.max() <= 1.0
        nuclei = image.instance_labels > 0
        for channel in normalized:
            assert channel[nuclei].mean() > channel[~nuclei].mean()


def test_auto_plus_rgb_is_the_auto_channel_followed_by_colour(images):
    for image in images[:6]:
        auto, category = normalize_image(image.pixels)
        rgb, _ = normalize_image(image.pixels, NormalizeConfig(method="rgb"))
        both, _ = normalize_image(image.pixels, NormalizeConfig(method="auto+rgb"))
        assert both.shape[0] == 4, category
        np.testing.assert_array_equal(both[:1], auto)
        np.testing.assert_array_equal(both[1:], rgb)
    assert NormalizeConfig(method="auto+rgb").describe("histology") == (
        "haematoxylin+rgb-inverted p1-99.8"
    )
    assert NormalizeConfig(method="auto+rgb").describe("fluorescence") == "max-channel+rgb p1-99.8"


def test_normalization_is_described_per_category():
    assert NormalizeConfig().describe("histology") == "haematoxylin p1-99.8"
    assert NormalizeConfig(method="rgb", clahe=True).describe("brightfield") == (
        "rgb-inverted p1-99.8 clahe"
    )


def test_dataset_normalization_reports_stats_per_category(tmp_path):
    from nucseg.datasets import SourceSpec, normalize_dataset
    from nucseg.synth.nuclei import write_demo_sources

    write_demo_sources(tmp_path / "raw", n_train=6, n_test=1, seed=5, shapes=((48, 48),))
    manifest = build_version(
        [SourceSpec("s", "kaggle_stage1", tmp_path / "raw" / "stage1_train")], tmp_path / "v"
    )
    stats = normalize_dataset(tmp_path / "v", tmp_path / "v" / "normalized", NormalizeConfig())
    assert sorted(stats.category) == sorted(manifest.category.unique())
    assert stats.n_images.sum() == len(manifest)
    assert (stats.after_p99 <= 1).all() and {"before_mean", "after_mean", "method"} <= set(
        stats.columns
    )


@pytest.fixture(scope="module")
def fluorescence():
    config = SynthConfig(
        n_images=8, seed=21, kind_weights=(1, 0, 0), shapes=((128, 128),), shape_weights=(1.0,)
    )
    return generate(config, "f")


def _dimmed(image, factor=0.25, every=3):
    """The image with every ``every``-th nucleus ``factor`` as bright (dim beside bright)."""
    pixels = image.pixels[..., :3].max(axis=2) if image.pixels.ndim == 3 else image.pixels
    dim = np.isin(image.instance_labels, np.arange(1, image.instance_labels.max() + 1, every))
    return np.where(dim, pixels * factor, pixels).astype(np.uint8)


def test_a_camera_frame_of_stained_tissue_keeps_its_nuclei_as_dark_as_in_colour():
    """A monochrome camera behind a brightfield microscope records the light every channel
    lets through: the demo's real H&E test images as 16-bit frames keep their nuclei's
    contrast (their brightest channel, blue, passes the purple nuclei nearly as the white
    background: it kept 36-80 % of the contrast)."""
    slice_ = REPO / "resources" / "dsb2018_slice"
    test_set = EvaluationSet(
        "slice", "kaggle_stage1", slice_ / "stage1_test", labels_csv=slice_ / "stage1_solution.csv"
    )
    stained = [(image, labels) for _, image, labels in test_set.images()]
    stained = [(i, labels) for i, labels in stained if detect_category(i) == "histology"]
    assert len(stained) == 4
    rng = np.random.default_rng(0)
    for image, labels in stained:
        nuclei = labels > 0
        colour, _ = normalize_image(image)
        frame, category = normalize_image(camera_frame(image, rng))
        assert category == "brightfield"  # gray, dark nuclei on a light background
        contrast, colour_contrast = (
            n[0][nuclei].mean() - n[0][~nuclei].mean() for n in (frame, colour)
        )
        assert contrast > 0.9 * colour_contrast


@pytest.mark.parametrize(
    ("offset", "electrons", "bits"), [(33_000, 4.0, 16), (100, 2.0, 12), (2_000, 1.0, 16)]
)
def test_camera_frames_are_fluorescence_with_every_count_kept(
    fluorescence, offset, electrons, bits
):
    rng = np.random.default_rng(0)
    for image in fluorescence:
        gray8 = _dimmed(image)
        frame = camera_frame(gray8, rng, offset=offset, electrons_per_level=electrons, bits=bits)
        assert frame.dtype == np.uint16 and np.median(frame) > 0.9 * offset
        normalized, category = normalize_image(frame)
        assert category == "fluorescence"
        reference, _ = normalize_image(gray8)
        nuclei = image.instance_labels > 0
        contrast, reference_contrast = (
            c[0][nuclei].mean() - c[0][~nuclei].mean() for c in (normalized, reference)
        )
        # nuclei stand out as in the 8-bit original, the noise aside
        assert contrast > max(0.1, 0.8 * reference_contrast)
        assert np.corrcoef(reference.ravel(), normalized.ravel())[0, 1] > 0.8
        # an 8-bit rendering of such a frame leaves ~10 gray levels between background and
        # the brightest nuclei; the camera's own counts leave over a hundred
        assert np.unique(normalized[0][nuclei]).size > 100


def test_offset_does_not_decide_the_category(images):
    """An 8-bit fluorescence image lifted by an offset stays fluorescence; a brightfield image
    stored in 16 bits with an offset stays brightfield."""
    for image in images:
        pixels = image.pixels[..., :3] if image.pixels.ndim == 3 else image.pixels
        if image.kind == "fluorescence" and detect_category(pixels) == "fluorescence":
            lifted = (100 + pixels.astype(np.uint16) // 2).astype(np.uint8)
            assert detect_category(lifted) == "fluorescence"
        if image.kind == "brightfield" and detect_category(pixels) == "brightfield":
            deep = (3_000 + pixels.astype(np.uint16) * 12).astype(np.uint16)
            assert detect_category(deep) == "brightfield"
            normalized, _ = normalize_image(deep)
            reference, _ = normalize_image(pixels)
            np.testing.assert_allclose(normalized, reference, atol=0.02)


@pytest.mark.parametrize("shape", [(40, 50), (40, 50, 1), (40, 50, 3), (40, 50, 4)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_channel_statistics_from_planes_equal_those_over_the_channel_axis(shape, dtype):
    rng = np.random.default_rng(len(shape))
    image = (rng.random(shape) * (255 if dtype == np.uint8 else 4095)).astype(dtype)
    rgb = colour_channels(image).astype(np.float32)
    planes = colour_planes(image)
    assert np.array_equal(np.maximum.reduce(planes), rgb.max(axis=2))
    assert np.array_equal(np.minimum.reduce(planes), rgb.min(axis=2))
    # integers: exact; floats: the same sums in the same order
    np.testing.assert_allclose(channel_mean(planes), rgb.mean(axis=2), rtol=1e-6)
