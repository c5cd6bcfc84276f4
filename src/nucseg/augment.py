"""Seeded augmentation of (image, target) training pairs: random crops, dihedral views,
intensity jitter.  Arrays are channels first (``C x H x W`` images, ``K x H x W`` targets);
geometry is applied identically to image and every target channel."""

from __future__ import annotations

import numpy as np


def random_crop(
    rng: np.random.Generator, image: np.ndarray, target: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """A ``size x size`` crop (last two axes) at a random position; smaller images are
    reflect-padded first (image) and zero-padded (target)."""
    height, width = image.shape[-2:]
    pad_h, pad_w = max(0, size - height), max(0, size - width)
    if pad_h or pad_w:
        pads = ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2))
        mode = "reflect" if pad_h < height and pad_w < width else "constant"
        image, target = np.pad(image, pads, mode=mode), np.pad(target, pads, mode="constant")
    top = rng.integers(0, image.shape[-2] - size + 1)
    left = rng.integers(0, image.shape[-1] - size + 1)
    window = (slice(None), slice(top, top + size), slice(left, left + size))
    return image[window], target[window]


def dihedral(array: np.ndarray, view: int) -> np.ndarray:
    """View ``0..7`` of the dihedral group on the last two axes: ``rot90^(view % 4)``,
    transposed first when ``view >= 4``.  :func:`inverse_dihedral` undoes it."""
    if view >= 4:
        array = np.swapaxes(array, -1, -2)
    return np.rot90(array, view % 4, axes=(-2, -1))


def inverse_dihedral(array: np.ndarray, view: int) -> np.ndarray:
    """Undo :func:`dihedral` with the same ``view``."""
    array = np.rot90(array, -(view % 4), axes=(-2, -1))
    return np.swapaxes(array, -1, -2) if view >= 4 else array


def jitter_intensity(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Random gamma (0.7-1.4), contrast (x0.7-1.3) and offset (+-0.08), clipped to [0, 1]."""
    gamma = np.exp(rng.uniform(np.log(0.7), np.log(1.4)))
    out = np.power(np.clip(image, 0, 1), gamma) * rng.uniform(0.7, 1.3) + rng.uniform(-0.08, 0.08)
    return np.clip(out, 0, 1).astype(np.float32)


def sample_batch(
    rng: np.random.Generator,
    images: list[np.ndarray],
    targets: list[np.ndarray],
    weights: np.ndarray,
    batch_size: int,
    size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a batch ``(N x C x size x size images, N x K x size x size targets)``, float32."""
    chosen = rng.choice(len(images), size=batch_size, p=weights)
    batch_images = np.empty((batch_size, images[0].shape[0], size, size), np.float32)
    batch_targets = np.empty((batch_size, targets[0].shape[0], size, size), np.float32)
    for slot, index in enumerate(chosen):
        image, target = random_crop(rng, images[index], targets[index], size)
        view = int(rng.integers(8))
        batch_images[slot] = jitter_intensity(rng, dihedral(image, view))
        batch_targets[slot] = dihedral(target, view)
    return batch_images, batch_targets
