import numpy as np
import pytest

from nucseg.ensemble import weighted_mean
from nucseg.errors import NucsegInputError


def test_heads_are_averaged_over_the_members_that_have_them():
    unet = {"a": np.full((1, 2, 2), 0.2, np.float32)}
    camunet = {"a": np.stack([np.full((2, 2), v, np.float32) for v in (0.6, 0.3, 0.9)])}
    mean = weighted_mean([unet, camunet], [1.0, 3.0])["a"]
    assert mean.shape == (3, 2, 2)
    np.testing.assert_allclose(mean[:, 0, 0], [0.25 * 0.2 + 0.75 * 0.6, 0.3, 0.9], rtol=1e-6)


def test_members_must_cover_the_same_images_and_weights_must_be_valid():
    maps = {"a": np.zeros((1, 2, 2), np.float32)}
    with pytest.raises(NucsegInputError, match="different sets of images"):
        weighted_mean([maps, {"b": maps["a"]}])
    with pytest.raises(NucsegInputError, match="non-negative"):
        weighted_mean([maps, maps], [1.0, -1.0])


def test_majority_vote_counts_members_not_probabilities():
    sure = {"a": np.full((1, 1, 2), 0.99, np.float32)}
    doubtful = {"a": np.array([[[0.4, 0.6]]], np.float32)}
    vote = weighted_mean([sure, doubtful, doubtful], vote=True)["a"]
    np.testing.assert_allclose(vote[0, 0], [1 / 3, 1.0], rtol=1e-6)
    mean = weighted_mean([sure, doubtful, doubtful])["a"]
    assert mean[0, 0, 0] > 0.5 > vote[0, 0, 0]  # one confident member wins the mean, not the vote
