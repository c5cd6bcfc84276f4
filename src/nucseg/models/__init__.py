"""Segmentation networks, built from a :class:`ModelConfig` read once from the config."""

from nucseg.models.unet import ModelConfig, UNet, build_model, count_parameters

__all__ = ["ModelConfig", "UNet", "build_model", "count_parameters"]
