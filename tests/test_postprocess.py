from dataclasses import replace

import numpy as np
import pytest

from nucseg.errors import NucsegInputError
from nucseg.metrics import dsb_score
from nucseg.postprocess import (
    PostprocessConfig,
    fill_contact_gaps,
    instances_from_probability,
    random_walker_growth,
)
from nucseg.synth.nuclei import SynthConfig, generate
from nucseg.targets import contact_pixels, semantic_target


def test_target_leaves_a_one_pixel_gap_owned_by_the_larger_nucleus():
    labels = np.zeros((5, 7), np.int32)
    labels[1:4, 1:3] = 1  # 6 px
    labels[1:4, 3:6] = 2  # 9 px, touches nucleus 1
    gap = contact_pixels(labels)
    assert gap[1:4, 3].all() and gap.sum() == 3
    target = semantic_target(labels)
    assert target.sum() == 15 - 3


def test_gap_filling_returns_the_gap_to_the_larger_nucleus_only_between_nuclei():
    labels = np.zeros((5, 8), np.int32)
    labels[1:4, 1:3] = 1
    labels[1:4, 4:7] = 2
    filled = fill_contact_gaps(labels)
    assert (filled[1:4, 3] == 2).all()
    assert (filled[:, 0] == 0).all() and (filled[:, 7] == 0).all()  # outer outline untouched


def test_perfect_probability_map_gives_near_perfect_instances():
    images = generate(SynthConfig(n_images=6, seed=21), "valid")
    scores = [
        dsb_score(
            i.instance_labels,
            instances_from_probability(semantic_target(i.instance_labels).astype(float)),
        )
        for i in images
    ]
    assert np.mean(scores) > 0.95


def test_touching_blob_without_gap_is_split_by_distance_peaks():
    yy, xx = np.mgrid[0:40, 0:60]
    blob = ((yy - 20) ** 2 + (xx - 18) ** 2 < 100) | ((yy - 20) ** 2 + (xx - 33) ** 2 < 100)
    labels = instances_from_probability(blob.astype(float), PostprocessConfig(split_h=1.0))
    assert labels.max() == 2
    assert instances_from_probability(blob.astype(float), PostprocessConfig(split_h=0)).max() == 1


def test_small_objects_are_removed_and_labels_are_consecutive():
    prob = np.zeros((30, 30))
    prob[2:4, 2:4] = 1  # 4 px
    prob[10:20, 10:20] = 1
    labels = instances_from_probability(prob, PostprocessConfig(min_size=10))
    assert labels.max() == 1 and labels[2, 2] == 0 and (labels[10:20, 10:20] == 1).all()


def _two_touching_discs():
    rows, cols = np.indices((40, 60))
    left = (rows - 20) ** 2 + (cols - 20) ** 2 < 12**2
    right = (rows - 20) ** 2 + (cols - 40) ** 2 < 12**2
    prob = np.where(left | right, 0.9, 0.05).astype(np.float32)
    markers = np.zeros((40, 60), np.int32)
    markers[18:23, 18:23], markers[18:23, 38:43] = 1, 2
    return prob, left, right, markers


def test_random_walker_splits_touching_nuclei_between_their_seeds():
    prob, left, right, markers = _two_touching_discs()
    labels = random_walker_growth(prob, left | right, markers)
    assert set(np.unique(labels)) == {0, 1, 2}
    assert (labels[left & ~right] == 1).mean() > 0.95 and (labels[right & ~left] == 2).mean() > 0.95
    assert (labels[~(left | right)] == 0).all()


@pytest.mark.parametrize("policy", ["watershed", "random_walker"])
@pytest.mark.parametrize("surface", ["distance", "probability"])
def test_every_policy_finds_two_nuclei_and_readds_a_blob_without_core(policy, surface):
    prob, left, right, _ = _two_touching_discs()
    prob[1:5, 50:58] = 0.6  # a faint blob: above the mask threshold, below the marker one
    config = PostprocessConfig(policy=policy, surface=surface, min_size=5)
    labels = instances_from_probability(prob, config)
    assert labels.max() == 3 and labels[3, 54] > 0
    without = instances_from_probability(prob, replace(config, readd_missed=False))
    assert without.max() == 2 and without[3, 54] == 0


def test_unknown_policy_is_named():
    with pytest.raises(NucsegInputError, match="postprocess.policy: 'magic'"):
        PostprocessConfig(policy="magic")


def test_overlay_colours_matched_false_and_missed_nuclei():
    from nucseg.plots import OVERLAY_COLOURS, outline_overlay

    truth = np.zeros((20, 40), np.int32)
    truth[2:10, 2:10], truth[2:10, 20:28] = 1, 2
    pred = np.zeros_like(truth)
    pred[2:10, 2:10], pred[12:18, 30:36] = 7, 8  # nucleus 1 found, 2 missed, 8 is false
    rgb = outline_overlay(np.zeros((1, 20, 40), np.float32), truth, pred)
    assert tuple(rgb[2, 5]) == OVERLAY_COLOURS["matched"]
    assert tuple(rgb[12, 33]) == OVERLAY_COLOURS["false_positive"]
    assert tuple(rgb[2, 24]) == OVERLAY_COLOURS["missed"]
    assert tuple(rgb[5, 5]) == (0, 0, 0)  # insides are left alone
    unscored = outline_overlay(np.zeros((1, 20, 40), np.float32), None, pred)
    assert tuple(unscored[2, 5]) == tuple(unscored[12, 33]) == OVERLAY_COLOURS["predicted"]


def test_overlays_cover_every_category_at_a_readable_size(tmp_path):
    from nucseg.plots import OVERLAY_MAX, OVERLAY_MIN, write_overlays

    small, huge = np.zeros((64, 80), np.int32), np.zeros((1200, 1000), np.int32)
    small[10:20, 10:20], huge[900:950, 100:150] = 1, 1
    instances = {"s1": small, "s2": np.zeros_like(small), "h1": huge}
    images = {k: np.zeros((1, *v.shape), np.float32) for k, v in instances.items()}
    categories = {"s1": "fluorescence", "s2": "fluorescence", "h1": "brightfield"}
    chosen = write_overlays(instances, images, None, categories, tmp_path, per_category=2)
    assert sorted(chosen) == ["h1", "s1"]  # an image with nothing to see is skipped
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["brightfield-unscored-h1.png", "fluorescence-unscored-s1.png"]
    import matplotlib.pyplot as plt

    enlarged = plt.imread(tmp_path / "fluorescence-unscored-s1.png")
    cropped = plt.imread(tmp_path / "brightfield-unscored-h1.png")
    assert min(enlarged.shape[:2]) >= OVERLAY_MIN and max(cropped.shape[:2]) == OVERLAY_MAX
    assert (cropped[..., :3].sum(axis=2) > 0).any()  # the crop holds the nucleus
    scored = write_overlays(instances, images, {"s1": small}, categories, tmp_path / "t", 1)
    assert scored == ["h1", "s1"] and (tmp_path / "t/fluorescence-dsb1.00-s1.png").is_file()


def test_fill_holes_equals_scipy_on_random_masks(rng):
    from scipy import ndimage as ndi

    from nucseg.postprocess import fill_holes

    for density in (0.2, 0.5, 0.8):
        mask = ndi.binary_opening(rng.random((64, 80)) < density)
        assert np.array_equal(fill_holes(mask), ndi.binary_fill_holes(mask))
    ring = np.zeros((9, 9), bool)
    ring[2:7, 2:7], ring[4, 4] = True, False
    assert fill_holes(ring)[4, 4] and fill_holes(ring).sum() == 25  # the hole, nothing else


def test_distance_to_background_equals_scipy(rng):
    from scipy import ndimage as ndi

    from nucseg.postprocess import distance_to_background

    masks = [
        ndi.binary_opening(rng.random((60 + k, 85)) < d) for k, d in enumerate((0.3, 0.6, 0.9))
    ]
    masks += [rng.random((7, 9)) < 0.5, np.ones((6, 5), bool), np.zeros((6, 5), bool)]
    disc = np.hypot(*np.ogrid[-150:151, -200:201]) < 140  # distances up to 140 pixels
    for mask in [*masks, disc]:
        expected = ndi.distance_transform_edt(mask)
        assert np.array_equal(distance_to_background(mask), expected)


def test_h_maxima_equals_scikit_image(rng):
    from scipy import ndimage as ndi
    from skimage.morphology import h_maxima as skimage_h_maxima

    from nucseg.postprocess import h_maxima

    for k in range(6):
        cores = ndi.binary_opening(rng.random((70 + k, 90)) < 0.55, iterations=2)
        surface = ndi.gaussian_filter(ndi.distance_transform_edt(cores), 1.0)
        for h in (0.1, 0.25, 0.5, 1.0, 100.0):
            assert np.array_equal(h_maxima(surface, h), skimage_h_maxima(surface, h)), (k, h)
    flat = np.full((5, 6), 2.0)
    assert np.array_equal(h_maxima(flat, 0.5), skimage_h_maxima(flat, 0.5))


def test_relative_size_filter_drops_fragments_whatever_the_nucleus_size():
    prob = np.zeros((80, 80), np.float32)
    for row in (5, 30, 55):
        prob[row : row + 20, 5:25] = 1  # three 400-px nuclei
    prob[10:15, 50:55] = 1  # a 25-px fragment: above min_size, 1/16 of the median
    kept = instances_from_probability(prob, PostprocessConfig(min_size=12))
    filtered = instances_from_probability(prob, PostprocessConfig(min_relative_size=0.25))
    assert kept.max() == 4 and filtered.max() == 3 and filtered[12, 52] == 0
    # the same picture at a third of the size keeps its nuclei: the threshold is relative
    small = instances_from_probability(prob[::3, ::3], PostprocessConfig(min_relative_size=0.25))
    assert small.max() == 3


def test_mean_probability_filter_drops_unconfident_objects_only():
    prob = np.zeros((60, 60), np.float32)
    prob[5:25, 5:25] = 0.95  # a confident nucleus
    prob[35:55, 35:55] = 0.6  # a faint blob the mask threshold lets through
    config = PostprocessConfig(mask_threshold=0.5, marker_threshold=0.5, split_h=0)
    assert instances_from_probability(prob, config).max() == 2
    filtered = instances_from_probability(prob, replace(config, min_mean_probability=0.8))
    assert filtered.max() == 1 and filtered[15, 15] == 1 and filtered[45, 45] == 0


def test_an_object_far_larger_than_the_typical_nucleus_is_dropped():
    """A bright streak or a tissue region taken as one object is no nucleus."""
    prob = np.zeros((120, 120), np.float32)
    for row in (5, 25, 45, 65):
        for col in (5, 25):
            prob[row : row + 12, col : col + 12] = 1  # eight 144-px nuclei
    prob[5:115, 60:115] = 1  # one 6,050-px region: 42 times the typical nucleus
    config = PostprocessConfig(split_h=0)
    dropped = instances_from_probability(prob, config)
    assert dropped.max() == 8 and dropped[60, 90] == 0
    kept = instances_from_probability(prob, replace(config, max_relative_size=0))
    assert kept.max() == 9 and kept[60, 90] > 0
    # a lone object has nothing to be compared with: kept
    alone = instances_from_probability(prob[:, 55:], config)
    assert alone.max() == 1


def test_fragments_do_not_make_true_nuclei_look_oversized():
    """The size limit compares with the objects that survive the other filters (as on a
    real fluorescence image whose unconfident fragments outnumbered its nuclei)."""
    prob = np.zeros((120, 120), np.float32)
    for row in (5, 45, 85):
        prob[row : row + 25, 5:30] = 1  # three 625-px nuclei
    for k in range(12):
        prob[5 + 9 * k : 9 + 9 * k, 60:64] = 0.6  # twelve 16-px unconfident fragments
    config = PostprocessConfig(
        mask_threshold=0.5, marker_threshold=0.5, split_h=0, min_mean_probability=0.8
    )
    kept = instances_from_probability(prob, config)
    assert kept.max() == 3 and kept[15, 15] > 0
