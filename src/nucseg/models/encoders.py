"""Encoders: a feature pyramid ``[skip_0 (full size), ..., skip_n, bottleneck]``.

Each encoder exposes ``widths`` (channels of every feature, same order) and ``multiple``
(input sides must be multiples of it).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from nucseg.errors import NucsegInputError
from nucseg.models.blocks import ConvBlock
from nucseg.models.config import ModelConfig


class PlainEncoder(nn.Module):
    """U-Net encoder: ``depth`` 2x max-poolings between double-convolution blocks."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.widths = [config.base_width * 2**level for level in range(config.depth + 1)]
        inputs = [config.in_channels, *self.widths[:-1]]
        self.blocks = nn.ModuleList(
            ConvBlock(i, o, config) for i, o in zip(inputs, self.widths, strict=True)
        )
        self.pool = nn.MaxPool2d(2)
        self.multiple = 2**config.depth

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level, block in enumerate(self.blocks):
            x = block(x if level == 0 else self.pool(x))
            features.append(x)
        return features


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock (same attribute names, so its weights load)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


def _layer(in_channels: int, out_channels: int, blocks: int, stride: int) -> nn.Sequential:
    first = BasicBlock(in_channels, out_channels, stride)
    return nn.Sequential(
        first, *(BasicBlock(out_channels, out_channels) for _ in range(blocks - 1))
    )


class ResNet34Encoder(nn.Module):
    """ResNet-34 (He et al. 2016) in torchvision's module layout (``conv1``, ``bn1``,
    ``layer1..4``), plus a full-resolution double-convolution stem of ``base_width`` channels
    for the finest skip.  Features: stem (1/1), conv1 (1/2), layer1 (1/4), layer2 (1/8),
    layer3 (1/16), layer4 (1/32, the bottleneck)."""

    multiple = 32

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.stem = ConvBlock(config.in_channels, config.base_width, config)
        self.conv1 = nn.Conv2d(config.in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _layer(64, 64, 3, 1)
        self.layer2 = _layer(64, 128, 4, 2)
        self.layer3 = _layer(128, 256, 6, 2)
        self.layer4 = _layer(256, 512, 3, 2)
        self.widths = [config.base_width, 64, 64, 128, 256, 512]
        if config.encoder_weights:
            load_resnet_weights(self, config.encoder_weights)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        stem = self.stem(x)
        x1 = self.relu(self.bn1(self.conv1(x)))
        x2 = self.layer1(self.maxpool(x1))
        x3 = self.layer2(x2)
        x4 = self.layer3(x3)
        return [stem, x1, x2, x3, x4, self.layer4(x4)]

    def resnet_state_keys(self) -> list[str]:
        """State-dict keys shared with torchvision's ``resnet34`` (all but the stem)."""
        return [k for k in self.state_dict() if not k.startswith("stem.")]


def load_resnet_weights(encoder: ResNet34Encoder, path: Path | str) -> None:
    """Load a torchvision ``resnet34`` state dict (``.pth``, loaded with ``weights_only``)
    into the encoder; ``fc.*`` is ignored.  For a 1-channel input the RGB filters of
    ``conv1`` are summed (a gray image is R = G = B).  Every key is checked by name and
    shape; a missing file or a mismatch raises one error naming the file."""
    path = Path(path)
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise NucsegInputError(
            f"{path}: encoder weights not found (net.encoder_weights; a torchvision resnet34 "
            "state dict, or remove the key to start from random weights)"
        ) from None
    except Exception as error:
        raise NucsegInputError(f"{path}: unreadable encoder weights ({str(error)[:200]})") from None
    if not isinstance(weights, dict):
        raise NucsegInputError(f"{path}: encoder weights are not a state dict")
    state = encoder.state_dict()
    conv1 = weights.get("conv1.weight")
    if conv1 is not None and state["conv1.weight"].shape[1] == 1 and conv1.shape[1] == 3:
        weights = {**weights, "conv1.weight": conv1.sum(dim=1, keepdim=True)}
    missing = [k for k in encoder.resnet_state_keys() if k not in weights]
    if missing:
        raise NucsegInputError(
            f"{path}: not a torchvision resnet34 state dict ({len(missing)} keys missing, "
            f"e.g. {missing[0]})"
        )
    for key in encoder.resnet_state_keys():
        if tuple(weights[key].shape) != tuple(state[key].shape):
            raise NucsegInputError(
                f"{path}: {key} has shape {tuple(weights[key].shape)}, "
                f"expected {tuple(state[key].shape)}"
            )
        state[key] = weights[key]
    encoder.load_state_dict(state)


def build_encoder(config: ModelConfig) -> nn.Module:
    return ResNet34Encoder(config) if config.encoder == "resnet34" else PlainEncoder(config)
