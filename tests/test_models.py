import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from nucseg.checkpoints import load_model, save_checkpoint
from nucseg.errors import NucsegInputError
from nucseg.io.images import write_channels, write_png
from nucseg.models import ModelConfig, build_model, count_parameters
from nucseg.normalize import NormalizeConfig, normalize_image
from nucseg.predict import (
    PredictConfig,
    blend_window,
    pad_to_multiple,
    predict_probability,
    tile_starts,
)
from nucseg.prediction_jobs import inputs_as_trained


def test_seed_unet_has_about_1_9_million_parameters():
    assert 1.85e6 < count_parameters(build_model(ModelConfig(base_width=16, depth=4))) < 1.95e6


@pytest.mark.parametrize("block_order", ["conv-act-bn", "conv-bn-act"])
@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
def test_output_matches_input_size(block_order, upsample):
    model = build_model(
        ModelConfig(base_width=4, depth=3, block_order=block_order, upsample=upsample)
    ).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 48, 64)).masks.shape == (2, 1, 48, 64)


@pytest.mark.parametrize("arch, heads", [("unet", 1), ("caunet", 2), ("camunet", 3)])
@pytest.mark.parametrize("decoder", ["shared", "separate"])
@pytest.mark.parametrize("encoder", ["plain", "resnet34"])
def test_every_architecture_gives_one_map_per_head(arch, heads, decoder, encoder):
    config = ModelConfig(
        arch=arch,
        base_width=4,
        depth=2,
        decoder=decoder,
        encoder=encoder,
        dilated_bottleneck=True,
        presence_head=True,
    )
    model = build_model(config).eval()
    side = 2 * model.multiple
    with torch.no_grad():
        output = model(torch.zeros(2, 1, side, side))
    assert output.masks.shape == (2, heads, side, side) and output.presence.shape == (2,)


def test_separate_decoders_cost_parameters_and_the_default_has_no_presence_head():
    shared = build_model(ModelConfig(arch="camunet", base_width=4, depth=2))
    separate = build_model(ModelConfig(arch="camunet", base_width=4, depth=2, decoder="separate"))
    assert count_parameters(separate) > count_parameters(shared)
    assert shared(torch.zeros(1, 1, 16, 16)).presence is None


def test_resnet34_encoder_has_torchvisions_layout_and_size():
    encoder = build_model(ModelConfig(encoder="resnet34", in_channels=3)).encoder
    keys = encoder.resnet_state_keys()
    assert {
        "conv1.weight",
        "bn1.running_var",
        "layer1.2.conv2.weight",
        "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.bias",
        "layer4.2.bn2.weight",
    } <= set(keys)
    params = [k for k in keys if "running" not in k and "num_batches" not in k]
    fc = 512 * 1000 + 1000
    assert sum(encoder.state_dict()[k].numel() for k in params) + fc == 21_797_672  # torchvision


def _torchvision_file(tmp_path, **replace):
    encoder = build_model(ModelConfig(encoder="resnet34", in_channels=3)).encoder
    state = {k: encoder.state_dict()[k] for k in encoder.resnet_state_keys()}
    state.update({"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}, **replace)
    torch.save(state, tmp_path / "resnet34.pth")
    return tmp_path / "resnet34.pth", state


def test_local_resnet_weights_load_and_gray_input_sums_the_rgb_filters(tmp_path):
    path, state = _torchvision_file(tmp_path)
    gray = build_model(ModelConfig(encoder="resnet34", encoder_weights=str(path))).encoder
    assert torch.allclose(gray.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(gray.layer3[5].bn2.running_mean, state["layer3.5.bn2.running_mean"])


@pytest.mark.parametrize(
    "damage, message",
    [
        ({"layer2.0.conv1.weight": torch.zeros(128, 64, 5, 5)}, "layer2.0.conv1.weight has shape"),
        ({"missing": True}, "not a torchvision resnet34 state dict"),
    ],
)
def test_mismatched_or_absent_resnet_weights_are_named(tmp_path, damage, message):
    path, state = _torchvision_file(tmp_path)
    if "missing" in damage:
        del state["layer4.2.bn2.weight"]
        torch.save(state, path)
    else:
        _torchvision_file(tmp_path, **damage)
    with pytest.raises(NucsegInputError, match=message):
        build_model(ModelConfig(encoder="resnet34", encoder_weights=str(path)))
    with pytest.raises(NucsegInputError, match="nowhere.pth: encoder weights not found"):
        build_model(ModelConfig(encoder="resnet34", encoder_weights=str(tmp_path / "nowhere.pth")))


def test_unknown_choices_are_named():
    with pytest.raises(NucsegInputError, match="net.arch: 'segnet' is not one of unet, caunet"):
        ModelConfig(arch="segnet")


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
    all_views = predict_probability(model, image[None], cpu, PredictConfig(views=tuple(range(8))))[
        0
    ]

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


def test_a_large_image_predicted_in_tiles_equals_the_whole_image_prediction():
    torch.manual_seed(3)
    model = build_model(ModelConfig(arch="caunet", base_width=4, depth=2))
    rng = np.random.default_rng(3)
    image = ndi.gaussian_filter(rng.random((1, 300, 420), dtype=np.float32), (0, 2, 2)) * 4
    # batch-norm statistics of this image, so that the untrained output varies strongly
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None
    with torch.no_grad():
        model(torch.from_numpy(image[:, :288, :416])[None])
    model.eval()
    cpu = torch.device("cpu")
    whole = predict_probability(model, image, cpu, PredictConfig(tile=4096))
    tiled = predict_probability(model, image, cpu, PredictConfig(tile=128, tile_margin=32))
    assert tiled.shape == whole.shape == (2, 300, 420)
    assert np.abs(tiled - whole).max() < 1e-3
    seams = predict_probability(model, image, cpu, PredictConfig(tile=128, tile_margin=0))
    assert np.abs(seams - whole).max() > 1e-3  # without margins the tile edges show


def test_tiles_are_as_few_as_the_tile_size_needs_and_no_longer_than_they_must_be():
    from nucseg.predict import tile_length

    assert tile_length(1000, 1024, 224, 16) == 1000  # fits: one tile, the axis itself
    assert tile_length(1040, 1024, 224, 16) == 640  # two tiles of 640, not of 1024
    assert tile_length(1360, 1024, 224, 16) == 800
    for total in range(320, 5000, 48):  # padded sizes: multiples of 16
        length = tile_length(total, 1024, 224, 16)
        starts = tile_starts(total, length, length - 224)
        needed = len(tile_starts(total, 1024, 1024 - 224))
        assert length <= 1024 and length % 16 == 0 and len(starts) == needed
        assert starts[-1] + length == total and all(np.diff(starts) <= length - 224)


def test_blend_windows_of_neighbouring_tiles_sum_to_one():
    starts = tile_starts(300, 128, 64)
    assert starts[0] == 0 and starts[-1] == 172
    total = np.zeros(300)
    for start in starts:
        total[start : start + 128] += blend_window(128, start, 300, 16, 32)
    assert total.min() > 0.99 - 1e-6 or np.all(total > 0)


def test_inputs_are_the_prepared_images_only_when_normalised_as_the_model_was_trained(tmp_path):
    rng = np.random.default_rng(0)
    source = (rng.random((24, 24, 3)) * 255).astype(np.uint8)
    write_png(source, tmp_path / "a.png")
    prepared = np.full((1, 24, 24), 0.25, np.float32)  # not what normalisation would give
    write_channels(prepared, tmp_path / "normalized" / "a.tif")
    paths = {"a": tmp_path / "a.png"}
    same = inputs_as_trained(NormalizeConfig(), NormalizeConfig(), tmp_path / "normalized", paths)
    np.testing.assert_array_equal(same["a"], prepared)
    colour = NormalizeConfig(method="auto+rgb")
    other = inputs_as_trained(colour, NormalizeConfig(), tmp_path / "normalized", paths)
    np.testing.assert_array_equal(other["a"], normalize_image(source, colour)[0])
    assert other["a"].shape == (4, 24, 24)
