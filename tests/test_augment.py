"""Augmentation: geometry shared by image and targets, seeded, vectorised."""

import numpy as np
import pytest
import torch

from nucseg.augment import NO_AUGMENTATION, AugmentConfig, augment_batch, dihedral, sample_crops
from nucseg.synth.nuclei import SynthConfig, generate

GEOMETRY_ONLY = AugmentConfig(
    gamma=0, contrast=0, brightness=0, channel_shuffle=False, noise=0, speckle=0
)


def _masks(n=6, size=64):
    images = generate(
        SynthConfig(n_images=n, seed=5, shapes=((size, size),), shape_weights=(1.0,)), "a"
    )
    return torch.from_numpy(np.stack([(i.instance_labels > 0)[None] for i in images]).astype("f4"))


def test_dihedral_views_are_exact_and_shared_by_image_and_target():
    x = torch.rand(16, 2, 32, 32, generator=torch.Generator().manual_seed(0))
    config = AugmentConfig(**{**NO_AUGMENTATION.__dict__, "dihedral": True})
    image, target = augment_batch(torch.Generator().manual_seed(1), x, x.clone(), config)
    torch.testing.assert_close(image, target)
    seen = set()
    for sample, out in zip(x.numpy(), image.numpy(), strict=True):
        matches = [v for v in range(8) if np.allclose(dihedral(sample, v), out, atol=1e-6)]
        assert matches
        seen.add(matches[0])
    assert len(seen) >= 5  # the views vary across the batch


def test_rotation_scale_and_elastic_move_image_and_targets_together():
    masks = _masks()
    image, target = augment_batch(
        torch.Generator().manual_seed(2),
        masks,
        masks.clone(),
        AugmentConfig(**{**GEOMETRY_ONLY.__dict__, "elastic": 3.0}),
    )
    assert set(torch.unique(target).tolist()) <= {0.0, 1.0}  # nearest keeps targets binary
    agree = ((image > 0.5) == (target > 0.5)).float().mean()
    assert agree > 0.98  # bilinear image and nearest target differ only at edges
    assert not torch.equal(target, masks)  # and the geometry did change


def test_intensity_changes_touch_the_image_only_and_stay_in_range():
    masks = _masks()
    image, target = augment_batch(
        torch.Generator().manual_seed(3),
        masks,
        masks.clone(),
        AugmentConfig(invert=0.5, noise=0.1, speckle=0.2),
    )
    assert image.min() >= 0 and image.max() <= 1
    assert set(torch.unique(target).tolist()) <= {0.0, 1.0}


def test_channel_shuffle_permutes_colour_channels():
    x = torch.stack([torch.full((8, 8), float(c)) for c in range(3)])[None].repeat(12, 1, 1, 1) / 2
    config = AugmentConfig(**{**NO_AUGMENTATION.__dict__, "channel_shuffle": True, "gamma": 1e-9})
    image, _ = augment_batch(torch.Generator().manual_seed(4), x, x[:, :1].clone(), config)
    orders = {tuple(image[i, :, 0, 0].tolist()) for i in range(12)}
    assert all(sorted(o) == pytest.approx([0, 0.5, 1]) for o in orders) and len(orders) > 1


def test_channel_gain_scales_each_channel_on_its_own_within_its_range():
    x = torch.full((32, 4, 8, 8), 0.5)
    config = AugmentConfig(**{**NO_AUGMENTATION.__dict__, "channel_gain": 0.2})
    image, _ = augment_batch(torch.Generator().manual_seed(4), x, x.clone(), config)
    gains = image[:, :, 0, 0] / 0.5
    assert torch.equal(image, gains[:, :, None, None].expand_as(image) * 0.5)  # flat stays flat
    assert gains.min() >= np.exp(-0.2) - 1e-6 and gains.max() <= np.exp(0.2) + 1e-6
    assert (gains[:, 0] != gains[:, 1]).all()  # channels of one image differ


def test_same_seeds_same_batch():
    images = [np.random.default_rng(i).random((1, 50, 70), dtype=np.float32) for i in range(3)]
    targets = [(i > 0.5).astype(np.float32) for i in images]

    def batch():
        crops = sample_crops(np.random.default_rng(9), images, targets, np.ones(3) / 3, 4, 32)
        return augment_batch(torch.Generator().manual_seed(9), *crops, AugmentConfig())

    (a, b), (c, d) = batch(), batch()
    assert torch.equal(a, c) and torch.equal(b, d) and a.shape == (4, 1, 32, 32)


def test_defocus_blurs_a_share_of_the_images_by_a_gaussian_within_its_sigma():
    point = torch.zeros(64, 1, 33, 33)
    point[:, :, 16, 16] = 1.0
    config = AugmentConfig(**{**NO_AUGMENTATION.__dict__, "blur": 0.5, "blur_sigma": 2.0})
    image, target = augment_batch(torch.Generator().manual_seed(3), point, point.clone(), config)
    assert torch.equal(target, point)  # the geometry of the labels is untouched
    sharp = (image == point).flatten(1).all(1)
    assert 16 < int(sharp.sum()) < 48  # about half pass unchanged
    blurred = image[~sharp, 0]
    assert torch.allclose(blurred.sum((1, 2)), torch.ones(len(blurred)), atol=1e-5)
    offsets = torch.arange(-16, 17, dtype=torch.float32) ** 2
    variance_y = (blurred.sum(2) * offsets).sum(1)
    variance_x = (blurred.sum(1) * offsets).sum(1)
    assert torch.allclose(variance_y, variance_x, atol=1e-4)  # isotropic
    assert variance_x.max() <= 4.0 + 1e-4 and variance_x.min() > 0
    assert torch.allclose(blurred, blurred.flip(-1), atol=1e-6)  # symmetric kernels
