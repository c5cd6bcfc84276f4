import numpy as np
import pandas as pd
import torch

from nucseg.models import ModelConfig
from nucseg.normalize import NormalizeConfig, normalize_image
from nucseg.synth import SynthConfig, generate
from nucseg.targets import semantic_target
from nucseg.train import LOG_COLUMNS, TrainConfig, TrainData, train_model


def _data(normalize=NormalizeConfig()):
    images = generate(
        SynthConfig(n_images=4, seed=3, shapes=((64, 64),), shape_weights=(1.0,)), "t"
    )
    norm = [normalize_image(i.pixels, normalize)[0] for i in images]
    targets = [semantic_target(i.instance_labels)[None] for i in images]
    return TrainData(norm[:3], targets[:3], norm[3:], targets[3:], [images[3].instance_labels])


def _train(tmp_path, name, normalize=NormalizeConfig()):
    config = TrainConfig(epochs=2, steps_per_epoch=3, batch_size=2, crop=32, seed=7, device="cpu")
    table = train_model(
        _data(normalize),
        ModelConfig(base_width=4, depth=2),
        config,
        tmp_path / f"{name}.pt",
        tmp_path / f"{name}.tsv",
    )
    return torch.load(tmp_path / f"{name}.pt", weights_only=True), table


def test_training_is_bit_reproducible_on_cpu_and_logs_each_epoch(tmp_path):
    first, table = _train(tmp_path, "a")
    second, _ = _train(tmp_path, "b")
    for key, value in first["state_dict"].items():
        assert torch.equal(value, second["state_dict"][key]), key
    log = pd.read_csv(tmp_path / "a.tsv", sep="\t")
    assert list(log.columns) == LOG_COLUMNS and list(log.epoch) == [1, 2]
    assert np.isfinite(log.train_loss).all() and (log.valid_dsb.between(0, 1)).all()
    assert len(table) == 2


def test_colour_input_trains_a_three_channel_network(tmp_path):
    checkpoint, _ = _train(tmp_path, "rgb", NormalizeConfig(method="rgb"))
    assert checkpoint["net"]["in_channels"] == 3
