"""Chart probabilities averaged over a small window of the map before each pixel's chart is chosen.

The DensePose head decides each map cell's chart on its own, so part borders come out ragged and
a part carries specks of its neighbours' charts. Where the cells around a pixel mostly agree, its
chart is likely theirs. `smooth_charts` replaces each cell's chart distribution by the mean of
the distributions in the ``window`` x ``window`` cells around it (cells beyond the map's border
left out) and returns its log, so the chart chosen is the one the neighbourhood favours. The
background channel is averaged like the charts. U and V are not touched: each pixel keeps the
U, V that the head gives the chart now chosen. A model-file setting (``chart_smoothing``, the
window in cells of the 112 x 112 map; 0: off), applied after the charts are settled
(`densepose.modeling.second_look.settle_charts`), so the labels, the dense score and the exported
graph all read the smoothed maps.
"""
from __future__ import annotations

import torch
from torch import Tensor

from densepose.modeling.guided_filter import box_mean


def smooth_charts(fine_segm: Tensor, window: int) -> Tensor:
    """(N, C, S, S) chart logits -> the log of their softmax averaged over ``window`` x ``window``
    cells (odd; 0 or 1: the logits as they are), in the logits' dtype."""
    if window <= 1:
        return fine_segm
    with torch.autocast(fine_segm.device.type, enabled=False):  # sums of probabilities: in float32
        p = box_mean(fine_segm.float().softmax(1), window // 2)
    return p.clamp(min=1e-8).log().to(fine_segm.dtype)
