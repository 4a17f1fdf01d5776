"""A convolution and its clamp as one oneDNN call on the CPU.

In bf16 on the CPU, a ReLU6 on a convolution's output costs nearly as much as a depthwise
convolution: it is a second pass over the activations, and torch's clamp is slower on bf16 than
on fp32. oneDNN, which runs torch's CPU convolutions, applies the clamp to each output as it is
written (torch's own ``mkldnn::_convolution_pointwise``, the op ``torch.compile`` uses for this
fusion). The output is the same: clamping commutes with rounding to bf16.

`conv2d_clamped` takes that path only where it is exact and safe: plain CPU tensors in fp32 (or
bf16 where oneDNN supports it), no gradient needed, not while a graph is traced or exported (the
exported graph keeps standard ops). Elsewhere it is ``F.conv2d`` followed by the clamp.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype a convolution of ``x`` runs in: autocast's, when it is on for ``x``'s device."""
    if x.is_floating_point() and torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def fusion_possible(x: Tensor, weight: Tensor, bias: Tensor | None, dtype: torch.dtype | None = None) -> bool:
    """Whether `conv2d_clamped` can run as one oneDNN call on these tensors (``dtype``: their
    `compute_dtype`, when the caller has it)."""
    tensors = [t for t in (x, weight, bias) if t is not None]
    if any(type(t) is not Tensor or t.device.type != "cpu" for t in tensors):  # FakeTensor, proxies, GPU
        return False
    if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
        return False
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return False
    dtype = compute_dtype(x) if dtype is None else dtype
    if dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return False
    return dtype in (torch.float32, torch.bfloat16) and x.dim() == 4 and torch.backends.mkldnn.is_available()


def conv2d_clamped(x: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, int],
                   padding: int | tuple[int, int], groups: int, clamp: tuple[float, float] | None) -> Tensor:
    """``F.conv2d(x, weight, bias, stride, padding, 1, groups)`` clamped to ``clamp`` = (low, high)
    (ReLU6 is (0, 6)); None: not clamped. (N, C, H, W) -> (N, O, H', W'), in `compute_dtype` (x)."""
    dtype = compute_dtype(x)
    if not fusion_possible(x, weight, bias, dtype):
        y = F.conv2d(x, weight, bias, stride, padding, 1, groups)
        # In place, as ReLU6: its backward reads the output, not the input.
        return y if clamp is None else F.hardtanh(y, float(clamp[0]), float(clamp[1]), inplace=True)
    pad = [padding, padding] if isinstance(padding, int) else list(padding)
    attr, scalars = ("none", []) if clamp is None else ("hardtanh", [float(clamp[0]), float(clamp[1])])
    return torch.ops.mkldnn._convolution_pointwise(
        x.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype), pad, list(stride), [1, 1], groups,
        attr, scalars, "")
