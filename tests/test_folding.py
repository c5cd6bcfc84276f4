import pytest
import torch
from torch import nn

from nucseg.models import ModelConfig, build_model
from nucseg.models.folding import fold_batch_norms


def trained_looking(config: ModelConfig, negative_encoder_scale: bool = False) -> nn.Module:
    """A network in eval mode whose batch norms hold statistics and affine weights far from
    the identity (as training leaves them), so a wrong fold shows."""
    torch.manual_seed(0)
    model = build_model(config)
    for norm in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        norm.running_mean.uniform_(0.0, 2.0)
        norm.running_var.uniform_(0.2, 3.0)
        norm.weight.data.uniform_(0.5, 1.5)
        norm.bias.data.uniform_(-1.0, 1.0)
    if negative_encoder_scale:  # one channel of the first encoder block's output
        model.encoder.blocks[0][5].weight.data[0] = -0.7
    return model.eval()


def batch_norms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("decoder", ["shared", "separate"])
@pytest.mark.parametrize("shape", [(48, 64), (8, 40)])  # (8, 40): 1 x 5 at the bottleneck
def test_folded_network_computes_the_same_maps_border_pixels_included(decoder, shape):
    model = trained_looking(ModelConfig(arch="camunet", base_width=8, depth=3, decoder=decoder))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batch_norms(model)
    decoders = len(model.decoders)
    # what stays: the bottleneck's output and each decoder's norms before a transposed conv
    assert (batch_norms(model), batch_norms(folded)) == (8 + 6 * decoders, 1 + 2 * decoders)
    inputs = torch.rand(2, 1, *shape)
    with torch.no_grad():
        expected, actual = model(inputs).masks, folded(inputs).masks
    assert expected.std() > 0.1  # maps that say something
    torch.testing.assert_close(actual, expected, atol=2e-5, rtol=1e-5)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert fold_batch_norms(folded) is folded  # folding twice changes nothing


def test_a_negative_scale_before_a_pooling_keeps_its_batch_norm():
    config = ModelConfig(arch="camunet", base_width=8, depth=3)
    model = trained_looking(config, negative_encoder_scale=True)
    folded = fold_batch_norms(model)
    assert batch_norms(folded) == batch_norms(fold_batch_norms(trained_looking(config))) + 1
    inputs = torch.rand(1, 1, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(folded(inputs).masks, model(inputs).masks, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "options",
    [
        dict(block_order="conv-bn-act"),
        dict(encoder="resnet34"),
        dict(upsample="bilinear"),
        dict(dilated_bottleneck=True),
    ],
)
def test_other_architectures_and_training_networks_are_left_as_they_are(options):
    model = build_model(ModelConfig(base_width=8, depth=3, **options)).eval()
    assert fold_batch_norms(model) is model
    training = build_model(ModelConfig(base_width=8, depth=3))
    assert fold_batch_norms(training) is training  # only eval networks fold
