import numpy as np
import pytest
import torch

from nucseg.errors import NucsegInputError
from nucseg.models import ModelConfig, build_model, count_parameters
from nucseg.predict import load_model, pad_to_multiple, predict_probability, save_checkpoint


def test_seed_unet_has_about_1_9_million_parameters():
    assert 1.85e6 < count_parameters(build_model(ModelConfig(base_width=16, depth=4))) < 1.95e6


@pytest.mark.parametrize("block_order", ["conv-act-bn", "conv-bn-act"])
@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
def test_output_matches_input_size(block_order, upsample):
    model = build_model(
        ModelConfig(base_width=4, depth=3, block_order=block_order, upsample=upsample)
    ).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 48, 64)).shape == (2, 1, 48, 64)


@pytest.mark.parametrize("shape", [(151, 500), (1, 1), (17, 33), (64, 64)])
@pytest.mark.parametrize("channels", [1, 3])
def test_prediction_works_at_any_image_size_and_channel_count(shape, channels):
    model = build_model(ModelConfig(base_width=4, depth=3, in_channels=channels)).eval()
    image = np.random.default_rng(0).random((channels, *shape), dtype=np.float32)
    prob = predict_probability(model, image, torch.device("cpu"))
    assert prob.shape == (1, *shape) and ((prob >= 0) & (prob <= 1)).all()


def test_padding_reaches_the_network_multiple():
    assert pad_to_multiple(np.zeros((3, 151, 500)), 16).shape == (3, 160, 512)


def test_tta_of_an_equivariant_input_equals_plain_prediction_shape_and_range():
    torch.manual_seed(0)
    model = build_model(ModelConfig(base_width=4, depth=2)).eval()
    image = np.random.default_rng(1).random((40, 24), dtype=np.float32)
    cpu = torch.device("cpu")
    all_views = predict_probability(model, image[None], cpu, views=tuple(range(8)))[0]

    def plain(view):
        return predict_probability(model, np.ascontiguousarray(view)[None], cpu)[0]

    manual = np.mean(
        [np.rot90(plain(np.rot90(image, k)), -k) for k in range(4)]
        + [np.rot90(plain(np.rot90(image.T, k)), -k).T for k in range(4)],
        axis=0,
    )
    np.testing.assert_allclose(all_views, manual, atol=1e-5)


def test_checkpoint_round_trip_and_corrupt_file(tmp_path):
    model = build_model(ModelConfig(base_width=4, depth=2))
    save_checkpoint(model, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt", torch.device("cpu"))
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(NucsegInputError, match="bad.pt"):
        load_model(tmp_path / "bad.pt", torch.device("cpu"))
