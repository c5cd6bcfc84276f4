"""Segmentation networks, built from a :class:`ModelConfig` read once from the config."""

from nucseg.models.config import ARCHITECTURES, ModelConfig
from nucseg.models.unet import NetOutput, SegmentationNet, build_model, count_parameters

__all__ = [
    "ARCHITECTURES",
    "ModelConfig",
    "NetOutput",
    "SegmentationNet",
    "build_model",
    "count_parameters",
]
