"""Precision settings: bfloat16 autocast where the CPU has it, float32 otherwise, never a
silent emulated bfloat16."""

import numpy as np
import pytest
import torch

from nucseg import precision
from nucseg.errors import NucsegInputError
from nucseg.models import ModelConfig, build_model
from nucseg.predict import PredictConfig, predict_probability

CPU = torch.device("cpu")


def test_auto_follows_the_cpu_and_fp32_is_always_float32(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.autocast_dtype("auto", CPU) is torch.bfloat16
    assert precision.autocast_dtype("bf16", CPU) is torch.bfloat16
    assert precision.autocast_dtype("fp32", CPU) is None
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.autocast_dtype("auto", CPU) is None
    assert precision.autocast_dtype("auto", torch.device("cuda")) is torch.float16


def test_bf16_on_a_cpu_without_it_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(NucsegInputError, match="precision: bf16 .* no native bfloat16"):
        precision.autocast_dtype("bf16", CPU)
    with pytest.raises(NucsegInputError, match="precision: 'fp8' is unknown"):
        precision.autocast_dtype("fp8", CPU)


@pytest.mark.skipif(not precision.cpu_has_native_bf16(), reason="CPU has no native bfloat16")
def test_bf16_maps_stay_close_to_float32_maps():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="camunet", base_width=8, depth=3)).eval()
    image = np.random.default_rng(0).random((1, 96, 128), dtype=np.float32)
    fp32 = predict_probability(model, image, CPU, PredictConfig(precision="fp32"))
    bf16 = predict_probability(model, image, CPU, PredictConfig(precision="bf16"))
    assert fp32.dtype == bf16.dtype == np.float32 and fp32.shape == bf16.shape == (3, 96, 128)
    assert 0 < np.abs(fp32 - bf16).max() < 0.05  # bf16 changes the maps, a little


def test_rescale_factor_brings_nuclei_to_the_trained_size():
    from nucseg.predict import rescale_factor

    yy, xx = np.mgrid[:200, :200]
    prob = np.zeros((1, 200, 200), np.float32)
    for cy, cx in ((50, 50), (50, 150), (150, 50), (150, 150)):
        prob[0][(yy - cy) ** 2 + (xx - cx) ** 2 < 30**2] = 1.0  # 60 px nuclei
    assert rescale_factor(prob, PredictConfig()) == 1.0  # off by default
    factor = rescale_factor(prob, PredictConfig(nucleus_diameter=20))
    assert factor == pytest.approx(20 / 60, rel=0.05)
    assert rescale_factor(prob, PredictConfig(nucleus_diameter=50)) == 1.0  # within the band
    assert rescale_factor(prob[:, :60, :60], PredictConfig(nucleus_diameter=20)) == 1.0  # too few


def test_rescaled_prediction_keeps_the_image_size(monkeypatch):
    import nucseg.predict

    torch.manual_seed(0)
    model = build_model(ModelConfig(base_width=4, depth=2)).eval()
    image = np.random.default_rng(0).random((1, 90, 110), dtype=np.float32)
    native = predict_probability(model, image, CPU, PredictConfig(nucleus_diameter=4))
    monkeypatch.setattr(nucseg.predict, "rescale_factor", lambda prob, config: 0.5)
    halved = predict_probability(model, image, CPU, PredictConfig(nucleus_diameter=4))
    assert halved.shape == native.shape == (1, 90, 110) and np.isfinite(halved).all()
    assert halved.min() >= 0 and halved.max() <= 1 and not np.allclose(halved, native)
