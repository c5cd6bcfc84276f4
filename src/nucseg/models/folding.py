"""Batch norms folded into the convolutions that read them, for inference.

The plain U-Net blocks run ``conv -> activation -> batch norm`` (``block_order:
conv-act-bn``), so a batch norm cannot fold into its own convolution (the activation lies
between); in eval mode it is a per-channel affine map ``a x + b`` on what the *next*
convolution reads, and folds there: weights scaled by ``a`` per input channel, bias plus
``sum W b``.  A zero-padded 3x3 convolution would then count ``b`` on the padding too, so
:class:`AffineInputConv2d` takes it back out of the border pixels (one row or column per
side, corners by inclusion-exclusion): the folded network computes the same function.

What folds (:func:`fold_batch_norms`): the first batch norm of every block (into the
block's second convolution), the last decoder block's output batch norm (into the 1x1 head)
and each encoder block's output batch norm whose scales are all positive (a positive
scale commutes with the max-pooling: into the next block's first convolution, and into
the decoder convolution that reads it as its skip connection).  What stays: the batch
norms before a transposed convolution (a bias per tap, not per channel: the coarser
decoder levels), those with a negative scale before a pooling, and every other
architecture (``conv-bn-act``, the ResNet-34 encoder, the dilated bottleneck: returned
unchanged).  Measured on dsb36 (docs/benchmarks.md): batch norm and ReLU were a quarter of
its inference time; folded, with its convolution weights in bf16
(:func:`nucseg.precision.convolutions_in`), 2-view prediction of its 133 held-out DSB
images took 30.7 s against 34.4 s, the same scores.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from nucseg.models.blocks import ConvBlock
from nucseg.models.encoders import PlainEncoder
from nucseg.models.unet import SegmentationNet


def batch_norm_affine(norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, b)`` (float64, one per channel) with ``norm(x) = a x + b`` in eval mode."""
    scale = norm.weight.double() / torch.sqrt(norm.running_var.double() + norm.eps)
    return scale, norm.bias.double() - norm.running_mean.double() * scale


class AffineInputConv2d(nn.Conv2d):
    """A 3x3 convolution (stride 1, zero padding 1, no dilation) of ``a x + b`` computed
    from ``x``: weights scaled by ``a`` per input channel, ``b``'s contribution in the bias,
    and the contributions of the taps that fall on the padding removed from the border
    pixels (``edges``: the top, bottom, left and right sums; ``corners``: the single taps
    that both sums of a corner remove)."""

    def __init__(self, conv: nn.Conv2d, scale: torch.Tensor, shift: torch.Tensor):
        if conv.kernel_size != (3, 3) or conv.padding != (1, 1) or conv.stride != (1, 1):
            raise ValueError("AffineInputConv2d folds into 3x3 convolutions of padding 1 only")
        if conv.dilation != (1, 1) or conv.groups != 1 or conv.padding_mode != "zeros":
            raise ValueError("AffineInputConv2d folds into plain convolutions only")
        super().__init__(conv.in_channels, conv.out_channels, 3, padding=1)
        weight = conv.weight.double()
        bias = conv.bias.double() if conv.bias is not None else weight.new_zeros(len(weight))
        taps = torch.einsum("oiyx,i->oyx", weight, shift)  # b's share of each tap
        with torch.no_grad():
            self.weight.copy_(weight * scale[None, :, None, None])
            self.bias.copy_(bias + taps.sum((1, 2)))
        edges = torch.stack([taps[:, 0].sum(1), taps[:, 2].sum(1), taps[:, :, 0].sum(1)])
        edges = torch.cat([edges, taps[:, :, 2].sum(1)[None]])
        corners = torch.stack([taps[:, 0, 0], taps[:, 0, 2], taps[:, 2, 0], taps[:, 2, 2]])
        self.register_buffer("edges", edges.float())  # 4 x out: top, bottom, left, right
        self.register_buffer("corners", corners.float())  # 4 x out: TL, TR, BL, BR
        self.to(conv.weight.device, memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        edges = self.edges.to(out.dtype)[..., None]  # 4 x out x 1
        corners = self.corners.to(out.dtype)
        out[:, :, 0, :] -= edges[0]
        out[:, :, -1, :] -= edges[1]
        out[:, :, :, 0] -= edges[2]
        out[:, :, :, -1] -= edges[3]
        out[:, :, 0, 0] += corners[0]
        out[:, :, 0, -1] += corners[1]
        out[:, :, -1, 0] += corners[2]
        out[:, :, -1, -1] += corners[3]
        return out


def _pointwise_folded(conv: nn.Conv2d, scale: torch.Tensor, shift: torch.Tensor) -> nn.Conv2d:
    """A 1x1 convolution of ``a x + b`` computed from ``x`` (no padding: exact)."""
    folded = copy.deepcopy(conv)
    weight = conv.weight.double()
    with torch.no_grad():
        folded.weight.copy_(weight * scale[None, :, None, None])
        folded.bias.copy_(conv.bias.double() + torch.einsum("oi,i->o", weight[:, :, 0, 0], shift))
    return folded


# a conv-act-bn ConvBlock: conv, act, norm, conv, act, norm (, dropout)
FIRST_CONV, FIRST_NORM, SECOND_CONV, LAST_NORM = 0, 2, 3, 5


def _affine_input(block: ConvBlock, index: int, scale, shift, channels: slice) -> None:
    """Fold ``(scale, shift)`` into the convolution at ``block[index]`` for the input
    ``channels`` (identity on the others)."""
    conv = block[index]
    full_scale = torch.ones(conv.in_channels, dtype=torch.float64)
    full_shift = torch.zeros(conv.in_channels, dtype=torch.float64)
    full_scale[channels], full_shift[channels] = scale, shift
    block[index] = AffineInputConv2d(conv, full_scale, full_shift)


def foldable(model: SegmentationNet) -> bool:
    """Whether :func:`fold_batch_norms` changes ``model``: plain encoder, ``conv-act-bn``,
    transposed up-sampling, no dilated bottleneck."""
    config = model.config
    return (
        isinstance(model.encoder, PlainEncoder)
        and config.block_order == "conv-act-bn"
        and config.upsample == "transpose"
        and not config.dilated_bottleneck
    )


@torch.no_grad()
def fold_batch_norms(model: SegmentationNet) -> SegmentationNet:
    """An inference copy of ``model`` (eval mode) with its batch norms folded into the
    convolutions that read them (see the module docstring); ``model`` itself when nothing
    folds or it is folded already.  The copy computes the same maps (float32: within ~1e-5)
    but must not be trained or saved: its weights are not the checkpoint's."""
    if not foldable(model) or model.training or getattr(model, "batch_norms_folded", False):
        return model
    folded = copy.deepcopy(model)
    folded.batch_norms_folded = True
    blocks = list(folded.encoder.blocks)
    skip_readers = {level: [] for level in range(len(blocks))}  # the up-steps per skip
    for decoder in folded.decoders:
        for i, step in enumerate(decoder.steps):  # the first step reads the deepest skip
            skip_readers[len(decoder.steps) - 1 - i].append(step)
    for block in [*blocks, *(s.conv for d in folded.decoders for s in d.steps)]:
        scale, shift = batch_norm_affine(block[FIRST_NORM])  # -> the second convolution
        _affine_input(block, SECOND_CONV, scale, shift, slice(None))
        block[FIRST_NORM] = nn.Identity()
    for level, block in enumerate(blocks[:-1]):  # outputs read by a pooling and a skip
        scale, shift = batch_norm_affine(block[LAST_NORM])
        if (scale <= 0).any():
            continue
        _affine_input(blocks[level + 1], FIRST_CONV, scale, shift, slice(None))
        for step in skip_readers[level]:  # its input: cat([up-sampled, skip])
            _affine_input(step.conv, FIRST_CONV, scale, shift, slice(step.up.out_channels, None))
        block[LAST_NORM] = nn.Identity()
    for decoder in folded.decoders:  # the last block's output -> the 1x1 head
        block = decoder.steps[-1].conv
        decoder.head = _pointwise_folded(decoder.head, *batch_norm_affine(block[LAST_NORM]))
        block[LAST_NORM] = nn.Identity()
    return folded.eval()
