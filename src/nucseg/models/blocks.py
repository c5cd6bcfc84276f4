"""Building blocks shared by the encoders and decoders."""

from __future__ import annotations

import torch
from torch import nn

from nucseg.models.config import ModelConfig


def activation(name: str) -> nn.Module:
    """``relu`` or ``elu`` (validated by :class:`ModelConfig`)."""
    return nn.ELU(inplace=True) if name == "elu" else nn.ReLU(inplace=True)


def conv_unit(
    in_channels: int, out_channels: int, config: ModelConfig, dilation: int = 1
) -> list[nn.Module]:
    """A 3x3 convolution with activation and batch norm in ``config.block_order``."""
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation)
    norm, act = nn.BatchNorm2d(out_channels), activation(config.activation)
    return [conv, act, norm] if config.block_order == "conv-act-bn" else [conv, norm, act]


class ConvBlock(nn.Sequential):
    """Two 3x3 convolution units, then optional 2D dropout."""

    def __init__(self, in_channels: int, out_channels: int, config: ModelConfig):
        layers = conv_unit(in_channels, out_channels, config)
        layers += conv_unit(out_channels, out_channels, config)
        if config.dropout > 0:
            layers.append(nn.Dropout2d(config.dropout))
        super().__init__(*layers)


class UpStep(nn.Module):
    """Upsample by 2 to ``out_channels``, concatenate the skip connection, convolve."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, config):
        super().__init__()
        if config.upsample == "transpose":
            self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        else:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, out_channels, 1),
            )
        self.conv = ConvBlock(out_channels + skip_channels, out_channels, config)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class DilatedBottleneck(nn.Module):
    """Cascaded dilated 3x3 convolutions (rates 1, 2, 4, 8) whose outputs are summed with
    the input (D-LinkNet's centre block): a wider receptive field at the coarsest scale."""

    def __init__(self, channels: int, config: ModelConfig, rates=(1, 2, 4, 8)):
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(*conv_unit(channels, channels, config, dilation=r)) for r in rates
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total, current = x, x
        for stage in self.stages:
            current = stage(current)
            total = total + current
        return total
