"""Numeric precision of network passes: float32, or bfloat16/float16 autocast.

``precision`` settings (config ``models.<name>.train.precision``, ``predict.precision``,
``nucseg predict --precision``):

- ``fp32``: every operation in float32.
- ``bf16``: convolutions and matrix products under ``torch.autocast`` in bfloat16; on a
  CPU this needs native bfloat16 instructions (x86 ``avx512_bf16`` or ``amx_bf16``), without
  which bfloat16 is emulated and ~10x slower, so it is refused with one clear error.
- ``auto``: float16 autocast on CUDA (with a gradient scaler in training), bfloat16 on a CPU
  with native bfloat16, float32 otherwise.

Weights, optimiser state and losses stay float32 in training (autocast only changes the
dtype operations run in); network outputs are cast back to float32 before any loss or
sigmoid.  For prediction the convolutions' weights are stored in the autocast dtype once
(:func:`convolutions_in`) instead of being cast by autocast at every pass.  Networks and
their inputs use the channels-last memory layout, which oneDNN's convolutions (CPU) and
cuDNN's tensor cores (CUDA) run fastest.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import platform
from pathlib import Path

import torch

from nucseg.errors import NucsegInputError

PRECISIONS = ("auto", "fp32", "bf16")

_DTYPE_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (``avx512_bf16`` or AMX tiles, read from
    ``/proc/cpuinfo``; Apple/ARM CPUs with ``bf16`` count too)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return False
    flags = set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[1].split())
    if platform.machine() in ("aarch64", "arm64"):
        return "bf16" in flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (None: float32). Raises
    :class:`NucsegInputError` for an unknown setting or ``bf16`` on a CPU without it."""
    if precision not in PRECISIONS:
        raise NucsegInputError(f"precision: {precision!r} is unknown; expected one of {PRECISIONS}")
    if precision == "fp32":
        return None
    if device.type == "cuda":
        return torch.float16 if precision == "auto" else torch.bfloat16
    if cpu_has_native_bf16():
        return torch.bfloat16
    if precision == "bf16":
        raise NucsegInputError(
            "precision: bf16 was requested but this CPU has no native bfloat16 "
            "(no avx512_bf16/amx_bf16 flag): it would run ~10x slower; use auto or fp32"
        )
    return None


def precision_name(dtype: torch.dtype | None) -> str:
    """``fp32``, ``bf16`` or ``fp16``: how a resolved precision is logged and recorded."""
    return _DTYPE_NAMES[dtype]


def autocast(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for ``dtype`` on ``device`` (a no-op for float32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def channels_last(tensor_or_model):
    """A 4-D tensor or a network in the channels-last memory layout."""
    if isinstance(tensor_or_model, torch.Tensor):
        return tensor_or_model.contiguous(memory_format=torch.channels_last)
    return tensor_or_model.to(memory_format=torch.channels_last)


def convolutions_in(model: torch.nn.Module, dtype: torch.dtype | None) -> torch.nn.Module:
    """For inference under autocast to ``dtype``: a copy of ``model`` whose convolution
    weights and biases are stored in ``dtype`` (what autocast would cast them to at every
    pass: the same maps; batch norms and the rest stay float32); ``model`` itself for
    float32.  Measured with dsb36 on a 256² image: 29.5 against 33.9 ms per pass."""
    convolutions = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    if dtype is None or not any(isinstance(m, convolutions) for m in model.modules()):
        return model
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, convolutions):
            module.to(dtype)
    return model
