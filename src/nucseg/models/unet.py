"""U-Net family of the DSB2018 seed pipeline: UNet, CAUNet (+ contour head) and CAMUNet
(+ contour + marker heads), on a plain or ResNet-34 encoder.

The network returns :class:`NetOutput`: pixel logits ``N x K x H x W`` (one channel per head,
in :attr:`ModelConfig.heads` order, or the ``classes`` channels of one softmax head) and, with
``presence_head``, image logits ``N``.  Input sides must be multiples of
:attr:`SegmentationNet.multiple`; ``nucseg.predict`` pads to it.
With base width 16 and depth 4 the plain UNet has ~1.9 M parameters.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from nucseg.models.blocks import DilatedBottleneck, UpStep
from nucseg.models.config import ModelConfig
from nucseg.models.encoders import build_encoder


class NetOutput(NamedTuple):
    masks: torch.Tensor  # N x K x H x W logits
    presence: torch.Tensor | None  # N logits, or None without a presence head

    def float32(self) -> NetOutput:
        """The same logits in float32 (after an autocast pass: losses run in float32)."""
        presence = None if self.presence is None else self.presence.float()
        return NetOutput(self.masks.float(), presence)


class Decoder(nn.Module):
    """Up-steps from the bottleneck back to full size, then a 1x1 convolution to ``out``."""

    def __init__(self, widths: list[int], out_channels: int, config: ModelConfig):
        super().__init__()
        self.steps = nn.ModuleList(
            UpStep(widths[level + 1], widths[level], widths[level], config)
            for level in reversed(range(len(widths) - 1))
        )
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        skips = list(features)
        x = skips.pop()
        for step in self.steps:
            x = step(x, skips.pop())
        return self.head(x)


class SegmentationNet(nn.Module):
    """Encoder, optional dilated bottleneck, shared or per-head decoders, optional presence
    head (global average of the bottleneck -> linear)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config)
        widths = self.encoder.widths
        self.bottleneck = (
            DilatedBottleneck(widths[-1], config) if config.dilated_bottleneck else nn.Identity()
        )
        if config.decoder == "shared":
            self.decoders = nn.ModuleList([Decoder(widths, config.out_channels, config)])
        else:
            self.decoders = nn.ModuleList(Decoder(widths, 1, config) for _ in config.heads)
        self.presence = (
            nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], 1))
            if config.presence_head
            else None
        )

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return self.encoder.multiple

    def forward(self, x: torch.Tensor) -> NetOutput:
        features = self.encoder(x)
        features[-1] = self.bottleneck(features[-1])
        masks = torch.cat([decoder(features) for decoder in self.decoders], dim=1)
        presence = None if self.presence is None else self.presence(features[-1])[:, 0]
        return NetOutput(masks, presence)


def build_model(config: ModelConfig) -> SegmentationNet:
    """Instantiate the network described by ``config``."""
    return SegmentationNet(config)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
