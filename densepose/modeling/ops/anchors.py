"""Anchor generator: one anchor size per FPN level, several aspect ratios."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from densepose.modeling.ops.kept import kept, tensor_state


def cell_anchors(size: float, aspect_ratios: tuple[float, ...]) -> Tensor:
    """(A, 4) anchors centred on (0, 0) with area size**2 and h / w = ratio."""
    out = []
    for r in aspect_ratios:
        w = math.sqrt(size * size / r)
        h = w * r
        out.append([-w / 2, -h / 2, w / 2, h / 2])
    return torch.tensor(out, dtype=torch.float32)


#: Feature sizes whose anchors `AnchorGenerator` keeps.
_KEPT_SIZES = 8


class AnchorGenerator(nn.Module):
    """Anchors for each FPN level (P2..P6 by default: sizes 32..512, strides 4..64).

    For a level of shape (H, W), anchors are ordered (y, x, a): index ``(y * W + x) * A + a``,
    matching the RPN head's output layout ``(A, H, W) -> (H, W, A)``.
    """

    def __init__(self, sizes: tuple[float, ...], aspect_ratios: tuple[float, ...], strides: tuple[int, ...]):
        super().__init__()
        assert len(sizes) == len(strides)
        self.strides = strides
        self.num_anchors = len(aspect_ratios)
        for i, s in enumerate(sizes):
            self.register_buffer(f"cell{i}", cell_anchors(s, aspect_ratios), persistent=False)

    def forward(self, feature_shapes: list[tuple[int, int]]) -> list[Tensor]:
        """[(H_l, W_l)] -> [(H_l * W_l * A, 4)] anchors in padded-image pixels; the anchors of the
        last few feature sizes are kept (images of one size share them; not under graph tracing)."""
        if torch.compiler.is_compiling():
            return self._anchors(feature_shapes)
        shapes = tuple(tuple(int(d) for d in hw) for hw in feature_shapes)
        key = (shapes, tensor_state(getattr(self, f"cell{i}") for i in range(len(self.strides))))
        anchors = kept(self, key, lambda: self._anchors(feature_shapes), _KEPT_SIZES)
        return list(anchors)  # the caller's own list; the tensors are shared, never written

    def _anchors(self, feature_shapes: list[tuple[int, int]]) -> list[Tensor]:
        """`forward`, computed."""
        out = []
        for i, ((h, w), stride) in enumerate(zip(feature_shapes, self.strides)):
            cell = getattr(self, f"cell{i}")
            ys = torch.arange(h, device=cell.device, dtype=torch.float32) * stride
            xs = torch.arange(w, device=cell.device, dtype=torch.float32) * stride
            yy, xx = torch.meshgrid(ys, xs, indexing="ij")
            shifts = torch.stack([xx, yy, xx, yy], dim=-1).reshape(-1, 1, 4)
            out.append((shifts + cell[None]).reshape(-1, 4))
        return out
