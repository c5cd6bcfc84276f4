"""Network hyper-parameters shared by every architecture."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from nucseg.errors import NucsegInputError

#: heads of each architecture, in target order (nucseg.targets.TARGET_CHANNELS)
ARCHITECTURES = {
    "unet": ("semantic",),
    "caunet": ("semantic", "contour"),
    "camunet": ("semantic", "contour", "marker"),
}
ENCODERS = ("plain", "resnet34")


@dataclass(frozen=True)
class ModelConfig:
    """Network hyper-parameters (config ``models.<name>.net``).

    ``arch`` picks the heads (:data:`ARCHITECTURES`): ``unet`` semantic only, ``caunet``
    + contour, ``camunet`` + contour + marker.  ``decoder``: one ``shared`` decoder ending in
    ``K`` 1x1 heads, or a ``separate`` decoder per head.  ``encoder``: ``plain`` U-Net blocks
    (``depth`` 2x poolings, widths ``base_width * 2**level``) or ``resnet34`` (torchvision
    layout, input multiple 32; ``encoder_weights`` an optional local torchvision state dict).
    ``dilated_bottleneck`` adds cascaded dilated convolutions (rates 1, 2, 4, 8) at the
    bottleneck; ``presence_head`` an image-level "any object?" logit from the bottleneck.
    ``classes`` >= 2 replaces the sigmoid heads of ``arch`` by one softmax head ``classes``
    over that many channels (multi-class segmentation; the shared decoder only).
    Blocks are conv -> activation -> batch norm (``conv-act-bn``, the seed's best) or
    ``conv-bn-act``; ``upsample`` is ``transpose`` (learned 2x2) or ``bilinear``.
    """

    arch: str = "unet"
    in_channels: int = 1
    base_width: int = 16
    depth: int = 4
    block_order: str = "conv-act-bn"
    activation: str = "relu"
    dropout: float = 0.0
    upsample: str = "transpose"
    decoder: str = "shared"
    encoder: str = "plain"
    encoder_weights: str | None = None
    dilated_bottleneck: bool = False
    presence_head: bool = False
    classes: int = 0

    def __post_init__(self):
        choices = {
            "arch": tuple(ARCHITECTURES),
            "encoder": ENCODERS,
            "decoder": ("shared", "separate"),
            "block_order": ("conv-act-bn", "conv-bn-act"),
            "activation": ("relu", "elu"),
            "upsample": ("transpose", "bilinear"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise NucsegInputError(
                    f"net.{key}: {getattr(self, key)!r} is not one of {', '.join(allowed)}"
                )
        if self.classes == 1 or self.classes < 0:
            raise NucsegInputError(f"net.classes: {self.classes}; use 0 (sigmoid heads) or >= 2")
        if self.classes and self.decoder != "shared":
            raise NucsegInputError("net.classes: a softmax head needs decoder: shared")

    @property
    def heads(self) -> tuple[str, ...]:
        """Names of the pixel heads, in output channel order (``("classes",)`` for a
        softmax head)."""
        return ("classes",) if self.classes else ARCHITECTURES[self.arch]

    @property
    def out_channels(self) -> int:
        """Output channels: one per sigmoid head, or ``classes`` for the softmax head."""
        return self.classes or len(self.heads)

    def to_dict(self) -> dict:
        return asdict(self)
