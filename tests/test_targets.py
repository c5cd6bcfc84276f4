"""Training targets from instance labels: hand-computed cases."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from nucseg.synth.nuclei import SynthConfig, generate
from nucseg.targets import (
    TARGET_CHANNELS,
    TargetConfig,
    border_weights,
    compute_targets,
    contour_target,
    marker_target,
)


def two_touching_squares() -> np.ndarray:
    labels = np.zeros((9, 14), np.int32)
    labels[2:7, 2:7] = 1
    labels[2:7, 7:12] = 2
    return labels


def test_contour_of_a_square_is_its_inner_ring_and_the_image_border_is_not_a_boundary():
    labels = np.zeros((9, 9), np.int32)
    labels[2:7, 2:7] = 1
    ring = contour_target(labels, width=1)
    assert ring.sum() == 25 - 9 and ring[4, 4] == 0 and ring[2, 2] == 1
    assert contour_target(labels, width=2).sum() == 25 - 1
    edge = np.zeros((6, 6), np.int32)
    edge[:, :3] = 1  # touches three image borders
    assert contour_target(edge, width=1)[:, 2].all() and contour_target(edge, width=1).sum() == 6


def test_touching_mode_outlines_only_where_two_nuclei_meet():
    contour = contour_target(two_touching_squares(), width=1, touching_only=True)
    assert contour[2:7, 6].all() and contour[2:7, 7].all() and contour.sum() == 10


def test_eroded_markers_give_one_core_per_nucleus_even_for_touching_nuclei():
    labels = two_touching_squares()
    marker = marker_target(labels, "eroded", depth=0.5)
    cores, count = ndi.label(marker)
    assert count == 2 and (labels[marker > 0] > 0).all()
    assert marker[4, 4] == 1 and marker[2, 2] == 0  # centre in, corner out


def test_centroid_markers_are_discs_of_the_given_radius_inside_the_nucleus():
    labels = np.zeros((21, 21), np.int32)
    labels[3:18, 3:18] = 1
    marker = marker_target(labels, "centroid", radius=2)
    assert marker.sum() == 13 and marker[10, 10] == 1 and marker[10, 13] == 0
    with pytest.raises(ValueError, match="eroded' or 'centroid"):
        marker_target(labels, "ring")


def test_border_weights_peak_in_the_narrow_gap_between_two_nuclei():
    labels = np.zeros((20, 40), np.int32)
    labels[5:15, 5:15] = 1
    labels[5:15, 17:27] = 2  # a two-pixel gap at columns 15-16
    weights = border_weights(labels, w0=10, sigma=5)
    assert (weights[labels > 0] == 0).all()
    gap, far = weights[10, 15], weights[10, 38]
    assert gap == pytest.approx(10 * np.exp(-((1 + 2) ** 2) / 50), rel=1e-6)
    assert gap > 5 * far
    single = np.zeros((10, 10), np.int32)
    single[3:6, 3:6] = 1
    assert not border_weights(single).any()  # one nucleus has no second-nearest


def test_compute_targets_stacks_the_four_channels_in_order():
    image = generate(SynthConfig(n_images=1, seed=3), "t")[0]
    labels = image.instance_labels
    config = TargetConfig(weight_contour=2.0)
    targets = compute_targets(labels, config)
    assert targets.shape == (len(TARGET_CHANNELS), *labels.shape) and targets.dtype == np.float32
    semantic, contour, marker, weight = targets
    assert set(np.unique(semantic)) <= {0, 1} and semantic.sum() < (labels > 0).sum()
    assert (marker <= (labels > 0)).all() and (contour <= (labels > 0)).all()
    assert weight.min() >= 1 and (weight[contour > 0] >= 3).all()
    assert ndi.label(marker)[1] >= 0.8 * len(np.unique(labels[labels > 0]))
