"""U-Net (Ronneberger et al. 2015) with the options the DSB2018 seed pipeline used.

``depth`` is the number of 2x poolings, so input sides must be multiples of
``2 ** depth`` (:attr:`UNet.multiple`); ``nucseg.predict`` pads to that.  With base width 16
and depth 4 the network has ~1.9 M parameters.  Block order ``conv-act-bn`` (the seed's best)
or ``conv-bn-act``; ``upsample`` is ``transpose`` (learned 2x2 transposed conv) or ``bilinear``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from nucseg.errors import NucsegInputError

ARCHITECTURES = ("unet",)


@dataclass(frozen=True)
class ModelConfig:
    """Network hyper-parameters (config ``models.<name>.net``)."""

    arch: str = "unet"
    in_channels: int = 1
    out_channels: int = 1
    base_width: int = 16
    depth: int = 4
    block_order: str = "conv-act-bn"
    activation: str = "relu"
    dropout: float = 0.0
    upsample: str = "transpose"

    def to_dict(self) -> dict:
        return asdict(self)


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "elu":
        return nn.ELU(inplace=True)
    raise NucsegInputError(f"net.activation: unknown activation {name!r}; expected relu or elu")


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by activation and batch norm in the given order."""

    def __init__(self, in_channels: int, out_channels: int, config: ModelConfig):
        layers: list[nn.Module] = []
        for index in range(2):
            conv = nn.Conv2d(
                in_channels if index == 0 else out_channels, out_channels, 3, padding=1
            )
            norm, act = nn.BatchNorm2d(out_channels), _activation(config.activation)
            if config.block_order == "conv-act-bn":
                layers += [conv, act, norm]
            elif config.block_order == "conv-bn-act":
                layers += [conv, norm, act]
            else:
                raise NucsegInputError(
                    f"net.block_order: {config.block_order!r} is not conv-act-bn or conv-bn-act"
                )
        if config.dropout > 0:
            layers.append(nn.Dropout2d(config.dropout))
        super().__init__(*layers)


class UpStep(nn.Module):
    """Upsample by 2, concatenate the skip connection, convolve."""

    def __init__(self, in_channels: int, out_channels: int, config: ModelConfig):
        super().__init__()
        if config.upsample == "transpose":
            self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        elif config.upsample == "bilinear":
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, out_channels, 1),
            )
        else:
            raise NucsegInputError(
                f"net.upsample: {config.upsample!r} is not transpose or bilinear"
            )
        self.conv = ConvBlock(2 * out_channels, out_channels, config)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    """U-Net returning raw logits ``N x out_channels x H x W``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        widths = [config.base_width * 2**level for level in range(config.depth + 1)]
        self.down = nn.ModuleList(
            ConvBlock(
                config.in_channels if level == 0 else widths[level - 1], widths[level], config
            )
            for level in range(config.depth + 1)
        )
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(
            UpStep(widths[level + 1], widths[level], config)
            for level in reversed(range(config.depth))
        )
        self.head = nn.Conv2d(widths[0], config.out_channels, 1)

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2**self.config.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for step in self.up:
            x = step(x, skips.pop())
        return self.head(x)


def build_model(config: ModelConfig) -> UNet:
    """Instantiate the network named by ``config.arch``."""
    if config.arch != "unet":
        raise NucsegInputError(
            f"net.arch: unknown architecture {config.arch!r}; expected one of {ARCHITECTURES}"
        )
    return UNet(config)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
