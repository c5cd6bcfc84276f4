"""The network as image -> probabilities, for consumers outside nucseg."""

from __future__ import annotations

import torch
from torch import nn

from nucseg.models.config import ModelConfig
from nucseg.models.unet import SegmentationNet


class HeadProbabilities(nn.Module):
    """``N x C x H x W`` normalised image -> ``N x K x H x W`` sigmoid probabilities of the
    pixel heads (semantic, contour, marker for ``camunet``); built from the keyword arguments
    of :class:`ModelConfig`, its weights under ``net.``."""

    def __init__(self, **net_config):
        super().__init__()
        self.net = SegmentationNet(ModelConfig(**net_config))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(image).masks)
