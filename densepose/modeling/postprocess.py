"""DensePose head outputs -> per-person (I, U, V) at box size, and the official quantised IUV array.

Same result as the reference converters (densepose_reference.md §1.11): resize the 112x112 maps
to the integer box size ``(int(w), int(h))`` with bilinear, ``align_corners=False``;
``I = argmax(fine) * (argmax(coarse) > 0)``; U, V from the channel of the chosen chart (0 on
background, as detectron2); quantise to uint8 ``[I, U*255, V*255]`` with
:func:`densepose.data.uv_encoding.quantize_iuv`.

Without resizing the 27 maps. A bilinear output pixel is a convex blend of four source pixels
(its taps), so when one chart is the arg-max at all four taps it is the arg-max of the blend (and
likewise for body vs background). Only pixels whose taps disagree, the part borders, blend all
channels; elsewhere the label is read from the source grid and U, V come from resizing the
chosen chart's U, V as one map. The labels equal the full resize's (up to float rounding ties);
U and V differ from it by float rounding only.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from densepose.data.uv_encoding import quantize_iuv


def int_box(box_xyxy) -> tuple[int, int, int, int]:
    """xyxy float -> (x0, y0, w, h) ints as the reference converter does (truncation, size >= 1)."""
    x0, y0, x1, y1 = (float(b) for b in box_xyxy)
    return int(x0), int(y0), max(int(x1 - x0), 1), max(int(y1 - y0), 1)


def _source_index(out_size: int, in_size: int, device) -> tuple[Tensor, Tensor, Tensor]:
    """PyTorch's bilinear ``align_corners=False`` source taps: (i0, i1, frac), each (out_size,)."""
    src = ((torch.arange(out_size, device=device, dtype=torch.float32) + 0.5) * (in_size / out_size) - 0.5).clamp(min=0)
    i0 = src.floor().long().clamp(max=in_size - 1)
    return i0, (i0 + 1).clamp(max=in_size - 1), src - i0


def _tap_value_and_agreement(src: Tensor, y0: Tensor, y1: Tensor, x0: Tensor, x1: Tensor) -> tuple[Tensor, Tensor]:
    """src (S_h, S_w) labels -> (the value at each output pixel's top-left tap, whether all four
    taps hold that value), each (h, w). Rows first, so the (h, w) work is three row gathers."""
    left, right = src[:, x0], src[:, x1]  # (S_h, w)
    row_agrees = left == right
    top = left[y0]
    return top, row_agrees[y0] & row_agrees[y1] & (top == left[y1])


def _blend(table: Tensor, dim: int, taps: tuple[Tensor, Tensor, Tensor, Tensor], wx: Tensor, wy: Tensor) -> Tensor:
    """Bilinear blend of the entries of ``table`` along ``dim`` at K pixels: taps = entry indices
    (top-left, top-right, bottom-left, bottom-right), each (K,); wx, wy (K,) weights of the
    right/bottom taps -> ``table`` with K entries along ``dim``."""
    shape = [1] * table.dim()
    shape[dim] = -1
    wx, wy = wx.view(shape), wy.view(shape)
    tl, tr, bl, br = (table.index_select(dim, t) for t in taps)
    return (tl * (1 - wx) + tr * wx) * (1 - wy) + (bl * (1 - wx) + br * wx) * wy


def densepose_to_labels_uv(coarse_segm: Tensor, fine_segm: Tensor, u: Tensor, v: Tensor, box_xyxy) -> tuple[Tensor, Tensor, Tensor]:
    """One detection: coarse (C,S,S) (C = 2, or 15 for legacy heads), fine/u/v (25,S,S), box (4,) xyxy
    -> labels (h, w) long 0..24, U, V (h, w) float in [0, 1], at the integer box size."""
    _, _, w, h = int_box(box_xyxy)
    c = coarse_segm.shape[0]
    s_h, s_w = fine_segm.shape[-2:]
    area = s_h * s_w
    y0, y1, fy = _source_index(h, s_h, fine_segm.device)
    x0, x1, fx = _source_index(w, s_w, fine_segm.device)
    # (S*S, C + 25): a source pixel's channels adjacent, for the arg-max and the row gathers below.
    maps = torch.cat([coarse_segm, fine_segm]).float().reshape(c + 25, area).t().contiguous()
    uv = torch.stack([u, v]).float().reshape(2, 25, area)
    body_src = maps[:, 1] > maps[:, 0] if c == 2 else maps[:, :c].argmax(1)  # ties -> background, as argmax
    chart_src = maps[:, c:].argmax(1)
    body, body_sure = _tap_value_and_agreement(body_src.to(torch.uint8).view(s_h, s_w), y0, y1, x0, x1)
    chart, chart_sure = _tap_value_and_agreement(chart_src.to(torch.uint8).view(s_h, s_w), y0, y1, x0, x1)
    body = body > 0
    labels = chart.long() * body
    chosen_uv = uv.gather(1, chart_src.expand(2, 1, area)).view(1, 2, s_h, s_w)  # each source pixel's arg-max chart
    out_uv = F.interpolate(chosen_uv, size=(h, w), mode="bilinear", align_corners=False)[0]
    iy, ix = (~(body_sure & (chart_sure | ~body))).nonzero(as_tuple=True)
    if iy.numel():  # the taps disagree: blend every channel at these pixels
        r0, r1, c0, c1 = y0[iy] * s_w, y1[iy] * s_w, x0[ix], x1[ix]
        taps = (r0 + c0, r0 + c1, r1 + c0, r1 + c1)
        blended = _blend(maps, 0, taps, fx[ix], fy[iy])  # (K, C + 25)
        here_body = blended[:, 1] > blended[:, 0] if c == 2 else blended[:, :c].argmax(1) > 0
        here = blended[:, c:].argmax(1) * here_body
        labels[iy, ix] = here
        offset = here * area
        out_uv[:, iy, ix] = _blend(uv.reshape(2, 25 * area), 1, tuple(t + offset for t in taps), fx[ix], fy[iy])
    out_uv = out_uv.clamp(0, 1) * (labels > 0)
    return labels, out_uv[0], out_uv[1]


def densepose_to_iuv(coarse_segm: Tensor, fine_segm: Tensor, u: Tensor, v: Tensor, box_xyxy) -> np.ndarray:
    """One detection -> the official uint8 (3, int h, int w) = [I, U*255, V*255]."""
    labels, uu, vv = densepose_to_labels_uv(coarse_segm, fine_segm, u, v, box_xyxy)
    return quantize_iuv(labels.cpu().numpy(), uu.cpu().numpy(), vv.cpu().numpy())
