"""Seeded training augmentation, vectorised over the batch in torch.

Arrays are channels first (``C x H x W`` images, ``T x H x W`` targets).  A batch is drawn
as random crops (numpy generator), then one ``grid_sample`` per batch applies the geometry
— dihedral view, small rotation, scale and aspect jitter, smooth elastic displacement —
identically to the image (bilinear) and every target channel (nearest), with reflection at
the borders; the intensity changes (gamma, contrast, brightness, channel shuffle, optional
inversion, additive gaussian and multiplicative speckle noise, and what unseen microscopes
add: defocus, uneven illumination, dim nuclei beside bright ones, a low-photon camera)
touch the image only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation ranges (config ``models.<name>.augment``); 0 disables a step.

    ``rotation``: max degrees; ``scale``: zoom drawn log-uniformly in ``[1/(1+s), 1+s]``;
    ``aspect``: extra relative stretch of one axis; ``elastic``: displacement amplitude in
    pixels of a random field on ``elastic_grid`` x ``elastic_grid`` control points, smoothly
    (bicubic) interpolated; ``gamma``/``contrast``: log-uniform half-ranges; ``brightness``:
    additive half-range; ``channel_gain``: log-uniform half-range of a gain drawn per channel
    (stain and tint variation of colour input); ``invert``: probability of ``1 - x``;
    ``noise``: max sigma of the additive gaussian noise; ``speckle``: max sigma of the
    multiplicative noise.  ``hflip``: mirror left-right with probability 1/2 (for images with
    a fixed up, such as ultrasound, with ``dihedral`` off); ``translate``: max shift in pixels
    along each axis.

    ``blur``: probability of defocus, a gaussian blur of sigma drawn uniformly in
    ``(0, blur_sigma]`` pixels (:func:`defocus`; before the intensity changes and noise, as a
    microscope blurs before its camera records).

    What other microscopes do to an image (:func:`microscope_effects`): ``illumination``:
    max strength of a smooth multiplicative shading (``1 + a * field``, ``field`` in [-1, 1]
    over a 3 x 3 grid); ``local_gain``: max log-range of a gain field on a grid of ~32-pixel
    cells (nuclei several-fold dimmer than their neighbours); ``camera``: probability of
    recording the crop with a low-photon camera: ``photons`` (min, max; log-uniform) at the
    brightest value, a background of up to 10 % of it, Poisson shot noise and gaussian read
    noise of up to 3 counts, then the per-image percentile scaling that normalisation applies
    (1st/99.8th: :func:`nucseg.normalize.percentile_scale`): offset and gain vanish, the low
    dynamic range and its noise remain.
    """

    dihedral: bool = True
    rotation: float = 10.0
    scale: float = 0.15
    aspect: float = 0.1
    elastic: float = 2.0
    elastic_grid: int = 5
    gamma: float = 0.35
    contrast: float = 0.3
    brightness: float = 0.08
    channel_shuffle: bool = True
    channel_gain: float = 0.0
    invert: float = 0.0
    noise: float = 0.03
    speckle: float = 0.1
    hflip: bool = False
    translate: float = 0.0
    blur: float = 0.0
    blur_sigma: float = 2.5
    illumination: float = 0.0
    local_gain: float = 0.0
    camera: float = 0.0
    photons: tuple[float, float] = (5.0, 500.0)

    def __post_init__(self):
        object.__setattr__(self, "photons", tuple(self.photons))  # YAML gives a list
        low, high = self.photons
        if not 0 < low <= high:
            raise ValueError(f"augment.photons must be 0 < min <= max, not {self.photons}")
        if self.blur > 0 and not self.blur_sigma > 0:
            raise ValueError(f"augment.blur_sigma must be > 0, not {self.blur_sigma}")


NO_AUGMENTATION = AugmentConfig(
    dihedral=False,
    rotation=0,
    scale=0,
    aspect=0,
    elastic=0,
    gamma=0,
    contrast=0,
    brightness=0,
    channel_shuffle=False,
    invert=0,
    noise=0,
    speckle=0,
)


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


def _uniform(generator: torch.Generator, n: int, half_range: float) -> torch.Tensor:
    return (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * half_range


def sampling_grid(
    generator: torch.Generator, n: int, size: int, config: AugmentConfig
) -> torch.Tensor:
    """``N x size x size x 2`` sampling grid (``grid_sample`` convention, align_corners
    False) of random dihedral view x rotation x scale/aspect, plus elastic displacement."""
    quarter_turns = (
        torch.randint(4, (n,), generator=generator) if config.dihedral else torch.zeros(n)
    )
    angle = quarter_turns.double() * (math.pi / 2) + _uniform(
        generator, n, math.radians(config.rotation)
    )
    transpose = (
        torch.rand(n, generator=generator) < 0.5 if config.dihedral else torch.zeros(n, dtype=bool)
    )
    zoom = torch.exp(_uniform(generator, n, math.log1p(config.scale)))
    stretch = torch.exp(_uniform(generator, n, math.log1p(config.aspect)))
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotate = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    flip = torch.where(
        transpose[:, None, None],
        torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64),
        torch.eye(2, dtype=torch.float64),
    )
    scale = torch.diag_embed(torch.stack([zoom * stretch, zoom / stretch], -1))
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, :, :2] = rotate @ flip @ scale
    # options drawn only when set, so that other configs keep their random streams
    if config.hflip:
        mirror = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
        theta[:, :, 0] *= mirror.double()[:, None]
    if config.translate > 0:
        theta[:, :, 2] = _uniform(generator, 2 * n, 2 * config.translate / size).view(n, 2)
    grid = F.affine_grid(theta.float(), [n, 1, size, size], align_corners=False)
    if config.elastic > 0:
        control = torch.rand(n, 2, config.elastic_grid, config.elastic_grid, generator=generator)
        shift = (control * 2 - 1) * (2 * config.elastic / size)  # pixels -> [-1, 1] units
        field = F.interpolate(shift, size=(size, size), mode="bicubic", align_corners=True)
        grid = grid + field.permute(0, 2, 3, 1)
    return grid


def defocus(
    generator: torch.Generator, images: torch.Tensor, config: AugmentConfig
) -> torch.Tensor:
    """Blur each image of an ``N x C x S x S`` batch with probability ``config.blur`` by a
    gaussian of its own sigma, uniform in ``(0, blur_sigma]`` pixels (one separable kernel
    per image, reflected borders); the others pass unchanged."""
    n, channels = images.shape[:2]
    blurred = torch.rand(n, generator=generator) < config.blur
    sigma = (1 - torch.rand(n, generator=generator)) * config.blur_sigma
    radius = min(math.ceil(3 * config.blur_sigma), images.shape[-1] - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernels = torch.exp(-0.5 * (offsets / sigma[:, None]) ** 2)
    kernels = kernels / kernels.sum(1, keepdim=True)
    identity = (offsets == 0).float().expand_as(kernels)
    kernels = torch.where(blurred[:, None], kernels, identity).repeat_interleave(channels, 0)
    planes = images.reshape(1, n * channels, *images.shape[-2:])
    planes = F.pad(planes, (radius, radius, radius, radius), mode="reflect")
    planes = F.conv2d(planes, kernels[:, None, None, :], groups=n * channels)
    planes = F.conv2d(planes, kernels[:, None, :, None], groups=n * channels)
    return planes.view_as(images)


def jitter_intensity(
    generator: torch.Generator, images: torch.Tensor, config: AugmentConfig
) -> torch.Tensor:
    """Gamma, contrast, brightness, channel shuffle and gain, inversion and noise per image of an
    ``N x C x H x W`` batch in [0, 1]; the result is clipped to [0, 1]."""
    n, channels = images.shape[:2]

    def per_image(values: torch.Tensor) -> torch.Tensor:
        return values.float().view(n, 1, 1, 1)

    if config.channel_shuffle and channels > 1:
        order = torch.argsort(torch.rand(n, channels, generator=generator), dim=1)
        images = torch.gather(images, 1, order[:, :, None, None].expand_as(images))
    if config.channel_gain > 0:
        gains = torch.exp(_uniform(generator, n * channels, config.channel_gain))
        images = images * gains.float().view(n, channels, 1, 1)
    gamma = per_image(torch.exp(_uniform(generator, n, config.gamma)))
    contrast = per_image(torch.exp(_uniform(generator, n, config.contrast)))
    brightness = per_image(_uniform(generator, n, config.brightness))
    images = images.clamp(0, 1) ** gamma * contrast + brightness
    if config.invert > 0:
        flip = per_image(torch.rand(n, generator=generator) < config.invert)
        images = flip * (1 - images) + (1 - flip) * images
    if config.noise > 0:
        sigma = per_image(torch.rand(n, generator=generator)) * config.noise
        images = images + sigma * torch.randn(images.shape, generator=generator)
    if config.speckle > 0:
        sigma = per_image(torch.rand(n, generator=generator)) * config.speckle
        images = images * (1 + sigma * torch.randn(images.shape, generator=generator))
    return images.clamp(0, 1)


def smooth_field(generator: torch.Generator, n: int, grid: int, size: int) -> torch.Tensor:
    """``N x 1 x size x size`` smooth random fields in about [-1, 1]: uniform values on a
    ``grid x grid`` lattice, bicubically interpolated."""
    control = torch.rand(n, 1, grid, grid, generator=generator) * 2 - 1
    return F.interpolate(control, size=(size, size), mode="bicubic", align_corners=True)


def _percentile_rescale(images: torch.Tensor, low: float = 1.0, high: float = 99.8):
    """Per image of a batch: the ``low``/``high`` percentiles to 0/1, clipped (as
    :func:`nucseg.normalize.percentile_scale`; flat images become 0)."""
    flat = images.flatten(1)
    bounds = torch.quantile(flat, torch.tensor([low / 100, high / 100]), dim=1)
    floor, span = bounds[0], bounds[1] - bounds[0]
    scaled = (flat - floor[:, None]) / span.clamp_min(1e-6)[:, None]
    scaled = torch.where(span[:, None] > 1e-6, scaled, torch.zeros_like(scaled))
    return scaled.clamp(0, 1).view_as(images)


def microscope_effects(
    generator: torch.Generator, images: torch.Tensor, config: AugmentConfig
) -> torch.Tensor:
    """Uneven illumination, local gain and a low-photon camera (see :class:`AugmentConfig`)
    on an ``N x C x S x S`` batch in [0, 1]; each step draws from ``generator`` only when on."""
    n, size = images.shape[0], images.shape[-1]
    if config.illumination > 0:
        strength = torch.rand(n, 1, 1, 1, generator=generator) * config.illumination
        images = images * (1 + strength * smooth_field(generator, n, 3, size)).clamp_min(0)
    if config.local_gain > 0:
        spread = torch.rand(n, 1, 1, 1, generator=generator) * config.local_gain
        cells = max(2, size // 32)
        images = images * torch.exp(spread * 0.5 * smooth_field(generator, n, cells, size))
    if config.camera > 0:
        recorded = (torch.rand(n, generator=generator) < config.camera).view(n, 1, 1, 1)
        low, high = np.log(config.photons[0]), np.log(config.photons[1])
        photons = torch.exp(low + torch.rand(n, 1, 1, 1, generator=generator) * (high - low))
        background = torch.rand(n, 1, 1, 1, generator=generator) * 0.1
        read_noise = torch.rand(n, 1, 1, 1, generator=generator) * 3
        rates = photons * (images.clamp(0, 1) + background)
        counts = torch.poisson(rates, generator=generator)
        counts = counts + read_noise * torch.randn(images.shape, generator=generator)
        images = torch.where(recorded, _percentile_rescale(counts), images)
    return images.clamp(0, 1)


def augment_batch(
    generator: torch.Generator,
    images: torch.Tensor,
    targets: torch.Tensor,
    config: AugmentConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment square crops ``N x C x S x S`` and their targets ``N x T x S x S`` (float32
    tensors on the CPU) with one geometry per crop, shared by image and targets."""
    if config == NO_AUGMENTATION:
        return images, targets
    grid = sampling_grid(generator, images.shape[0], images.shape[-1], config)
    sample = {"padding_mode": "reflection", "align_corners": False}
    images = F.grid_sample(images, grid, mode="bilinear", **sample)
    targets = F.grid_sample(targets, grid, mode="nearest", **sample)
    if config.blur > 0:
        images = defocus(generator, images, config)
    images = jitter_intensity(generator, images, config)
    if config.illumination > 0 or config.local_gain > 0 or config.camera > 0:
        images = microscope_effects(generator, images, config)
    return images, targets


def sample_crops(
    rng: np.random.Generator,
    images: list[np.ndarray],
    targets: list[np.ndarray],
    weights: np.ndarray,
    batch_size: int,
    size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random crops of images drawn with probabilities ``weights``:
    ``(N x C x size x size, N x T x size x size)`` float32 tensors."""
    chosen = rng.choice(len(images), size=batch_size, p=weights)
    batch_images = np.empty((batch_size, images[0].shape[0], size, size), np.float32)
    batch_targets = np.empty((batch_size, targets[0].shape[0], size, size), np.float32)
    for slot, index in enumerate(chosen):
        batch_images[slot], batch_targets[slot] = random_crop(
            rng, images[index], targets[index], size
        )
    return torch.from_numpy(batch_images), torch.from_numpy(batch_targets)
