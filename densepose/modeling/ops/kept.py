"""Values a module derives from its own tensors, kept while those tensors stay as they were.

Inference recomputes some small things on every call that depend only on weights or buffers: a
convolution's folded norm (`densepose.modeling.efficientnet_lite.ConvBN`), the anchors of a
feature size (`densepose.modeling.ops.anchors.AnchorGenerator`). `kept` computes such a value once
per key; `tensor_state` is the part of a key that changes whenever one of the tensors is replaced,
converted, moved or written in place (`load_state_dict` copies into them, bumping their version).
"""
from __future__ import annotations

from typing import Callable, Hashable, Iterable, TypeVar

import torch
from torch import Tensor, nn

T = TypeVar("T")


def tensor_state(tensors: Iterable[Tensor]) -> tuple:
    """A hashable key of ``tensors``: each one's storage address, in-place version, dtype and device."""
    return tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)


def kept(owner: nn.Module, key: Hashable, make: Callable[[], T], keep: int = 1) -> T:
    """``make()``, computed once for ``key`` and kept on ``owner`` with its ``keep`` latest keys
    (the oldest dropped first). Made outside inference mode and without autograd, so the values
    are plain tensors that a later training step may read."""
    values = owner.__dict__.setdefault("_kept", {})
    if key not in values:
        if len(values) >= keep:
            values.pop(next(iter(values)))
        with torch.inference_mode(False), torch.no_grad():
            values[key] = make()
    return values[key]
