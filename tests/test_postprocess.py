import numpy as np

from nucseg.metrics import dsb_score
from nucseg.postprocess import PostprocessConfig, fill_contact_gaps, instances_from_probability
from nucseg.synth import SynthConfig, generate
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
