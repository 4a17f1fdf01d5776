"""DensePose head outputs -> the official quantised IUV array at box size.

Same steps as the reference converters (densepose_reference.md §1.11): resize the 112x112 maps
to the integer box size ``(int(w), int(h))`` with bilinear, ``align_corners=False``;
``I = argmax(fine) * (argmax(coarse) > 0)``; U, V from the channel of the chosen chart (0 on background); quantise to
uint8 ``[I, U*255, V*255]`` with :func:`densepose.data.uv_encoding.quantize_iuv`.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from densepose.data.uv_encoding import quantize_iuv


def _box_size(box_xyxy) -> tuple[int, int]:
    b = [float(v) for v in box_xyxy]
    return max(int(b[2] - b[0]), 1), max(int(b[3] - b[1]), 1)  # (w, h); int() truncates like d2


def _labels_uv(coarse: Tensor, fine: Tensor, u: Tensor, v: Tensor, w: int, h: int):
    """(N, C, S, S) maps of N boxes of the same size -> labels (N, h, w) long, U, V (N, h, w)."""
    def rs(t: Tensor) -> Tensor:
        return F.interpolate(t.float(), size=(h, w), mode="bilinear", align_corners=False)

    labels = rs(fine).argmax(dim=1) * (rs(coarse).argmax(dim=1) > 0).long()
    idx = labels[:, None]
    fg = labels > 0  # the reference leaves U = V = 0 on background pixels
    uu = torch.where(fg, rs(u).gather(1, idx)[:, 0], torch.zeros((), device=u.device))
    vv = torch.where(fg, rs(v).gather(1, idx)[:, 0], torch.zeros((), device=v.device))
    return labels, uu, vv


def densepose_to_iuv(coarse_segm: Tensor, fine_segm: Tensor, u: Tensor, v: Tensor, box_xyxy) -> np.ndarray:
    """One detection: coarse (2,S,S), fine/u/v (25,S,S), box (4,) xyxy -> uint8 (3, int h, int w)."""
    w, h = _box_size(box_xyxy)
    labels, uu, vv = _labels_uv(coarse_segm[None], fine_segm[None], u[None], v[None], w, h)
    return quantize_iuv(labels[0].cpu().numpy(), uu[0].clamp(0, 1).cpu().numpy(), vv[0].clamp(0, 1).cpu().numpy())


def densepose_to_iuv_batch(coarse_segm: Tensor, fine_segm: Tensor, u: Tensor, v: Tensor,
                           boxes_xyxy: Tensor) -> list[np.ndarray]:
    """N detections -> list of uint8 (3, h_i, w_i). Boxes of equal integer size are resized together."""
    sizes = [_box_size(b) for b in boxes_xyxy.tolist()]
    out: list[np.ndarray | None] = [None] * len(sizes)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, s in enumerate(sizes):
        groups.setdefault(s, []).append(i)
    for (w, h), idx in groups.items():
        sel = torch.tensor(idx, dtype=torch.long, device=coarse_segm.device)
        labels, uu, vv = _labels_uv(coarse_segm[sel], fine_segm[sel], u[sel], v[sel], w, h)
        labels, uu, vv = labels.cpu().numpy(), uu.clamp(0, 1).cpu().numpy(), vv.clamp(0, 1).cpu().numpy()
        for j, i in enumerate(idx):
            out[i] = quantize_iuv(labels[j], uu[j], vv[j])
    return out  # type: ignore[return-value]
