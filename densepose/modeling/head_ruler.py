"""A ruler from the top of the head: which charts each row of a person's map can hold.

The DensePose head reads a 28 x 28 window of features around each person and labels every
pixel from what it sees nearby. Trained on renders, it knows a shoulder from a thigh by the
texture and shape around it, which real clothes and close-up framing confuse: on Grace Hopper's
portrait the bundled head painted her chin as torso and her shoulders as upper legs. The head
itself is what it finds most surely (a face, hair), and for a person whose head shows, the height
below the top of the head, in head heights, says much about what a row can be: the torso one to
three head heights down, the upper arms one to two, upper legs mostly from two and a half on, feet
near the bottom (MODELS.md, "A ruler from the head", has the counts).

* `head_extent`: per person, the top row and the height of the pixels the head labels as head
  (charts 23 and 24 of the foreground), from the maps themselves.
* `ruler_bins`: the ruler's bins of a height ``d = (row - top) / height``: bin 0 below ``-1``,
  bins 1 .. ``RULER_BINS - 2`` of ``RULER_STEP`` from ``RULER_START``, the last from 8 on.
* `ruler_log_ratio`: from chart counts per bin on renders (``densepose.engine.head_ruler_fit``),
  ``log P(chart | bin) / P(chart)`` for each bin.
* `apply_head_ruler`: Bayes' rule on the head's chart probabilities, as
  `densepose.modeling.facing.reweight_charts` does with the facing: each row's charts multiplied by
  their ratio at the row's bin (raised to ``power``) and renormalised to their old total, so the
  silhouette stays. Left against right and front against back are not the ruler's to settle; the
  facing classifier does that (`DensePoseRCNN.settle_charts` adds both log weights,
  `head_ruler_log_weight` and the facing's, and renormalises once).

Rows above the top of the head get no prior (a raised hand is as likely as hair), nor does a
person whose head is not seen: fewer head pixels than ``min_head`` of the map, or a head that
touches the map's top edge (its top is then unknown).
"""
from __future__ import annotations

import torch
from torch import Tensor

from densepose.modeling.facing import weigh_charts

#: Head charts (part index I) the ruler is measured from.
HEAD_CHARTS = (23, 24)
#: The ruler's first bin edge (head heights below the top of the head) and its step.
RULER_START = -1.0
RULER_STEP = 0.25
#: Bins: one below RULER_START, 36 of RULER_STEP up to 8 head heights, one from there on.
RULER_BINS = 38
#: Bins from this one on lie below the top of the head (d >= 0).
FIRST_BIN_BELOW_TOP = round(-RULER_START / RULER_STEP) + 1
#: The head's top and bottom rows: these quantiles of its pixels' rows (a stray pixel moves neither).
HEAD_TOP_QUANTILE = 0.02
HEAD_BOTTOM_QUANTILE = 0.98
#: Counts are smoothed by this many pixels per chart before the ratios are taken.
SMOOTHING = 1.0
#: The log ratios are clipped to +-this: no row rules a chart out entirely.
MAX_LOG_RATIO = 4.0


def ruler_bins(d: Tensor) -> Tensor:
    """Heights below the top of the head, in head heights (any shape) -> bin indices (int64, same shape)."""
    index = torch.floor((d - RULER_START) / RULER_STEP).long() + 1
    return index.clamp(0, RULER_BINS - 1)


def head_extent(coarse_segm: Tensor, fine_segm: Tensor, min_head: float) -> tuple[Tensor, Tensor, Tensor]:
    """Where each person's head is on their map.

    Args:
        coarse_segm: (N, 2, S, S) foreground logits.
        fine_segm: (N, 25, S, S) chart logits.
        min_head: the least share of the S x S map that must be head for the ruler to apply.

    Returns:
        top (N,) first head row, height (N,) head rows (float, >= 1), seen (N,) bool: the head is
        large enough and does not touch the map's top edge.
    """
    size = fine_segm.shape[-1]
    foreground = coarse_segm[:, 1] > coarse_segm[:, 0]
    chart = fine_segm[:, 1:].argmax(1) + 1
    head = foreground & (chart >= HEAD_CHARTS[0]) & (chart <= HEAD_CHARTS[1])
    per_row = head.sum(2).float()  # (N, S)
    total = per_row.sum(1)
    share = per_row.cumsum(1) / total.clamp(min=1)[:, None]
    top = (share < HEAD_TOP_QUANTILE).sum(1)
    bottom = (share < HEAD_BOTTOM_QUANTILE).sum(1)
    height = (bottom - top + 1).float()
    seen = (total >= min_head * size * size) & (top > 0)
    return top, height, seen


def chart_log_ratio(counts: Tensor, no_prior: slice | int) -> Tensor:
    """Bayes' rule for a counted prior: (B, 25) pixel counts of each chart per bin (column 0,
    background, unused) -> (B, 25) ``log P(chart | bin) / P(chart)``, counts smoothed by
    ``SMOOTHING``, clipped to +-MAX_LOG_RATIO; zero in column 0 and in the bins ``no_prior``
    selects. The head ruler's and the skeleton prior's (`densepose.modeling.skeleton_prior`) ratios."""
    charts = counts[:, 1:].double()
    given_bin = (charts + SMOOTHING) / (charts.sum(1, keepdim=True) + SMOOTHING * charts.shape[1])
    overall = (charts.sum(0) + SMOOTHING) / (charts.sum() + SMOOTHING * charts.shape[1])
    log_ratio = (given_bin / overall).log().clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
    log_ratio[no_prior] = 0
    return torch.cat([torch.zeros(counts.shape[0], 1, dtype=log_ratio.dtype), log_ratio], 1).float()


def ruler_log_ratio(counts: Tensor) -> Tensor:
    """(RULER_BINS, 25) pixel counts of each chart per bin (column 0, background, unused) ->
    (RULER_BINS, 25) `chart_log_ratio`, zero in the bins above the top of the head (d < 0)."""
    if counts.shape != (RULER_BINS, 25):
        raise ValueError(f"head ruler counts: expected shape ({RULER_BINS}, 25), got {tuple(counts.shape)}")
    return chart_log_ratio(counts, slice(0, FIRST_BIN_BELOW_TOP))


def apply_head_ruler(coarse_segm: Tensor, fine_segm: Tensor, log_ratio: Tensor, power: float = 1.0,
                     min_head: float = 0.01) -> Tensor:
    """The head's chart logits weighed by each row's place on the ruler (module docstring).

    Args:
        coarse_segm: (N, 2, S, S) foreground logits.
        fine_segm: (N, 25, S, S) chart logits (channel 0 background).
        log_ratio: (RULER_BINS, 25) from `ruler_log_ratio` (a model's ``head_ruler_log_ratio``).
        power: the log ratios are multiplied by it (``ModelConfig.head_ruler_power``); 1: Bayes' rule.
        min_head: see `head_extent`.

    Returns:
        (N, 25, S, S) logits: channels 1..24 shifted by ``power * log_ratio`` of their row's bin and
        rescaled to their old total against channel 0, which is unchanged; people whose head is
        not seen unchanged.
    """
    return weigh_charts(fine_segm, head_ruler_log_weight(coarse_segm, fine_segm, log_ratio, power, min_head))


def head_ruler_log_weight(coarse_segm: Tensor, fine_segm: Tensor, log_ratio: Tensor, power: float = 1.0,
                          min_head: float = 0.01) -> Tensor:
    """The ruler's log weights of charts 1..24 for each row of each person's map: (N, 24, S, 1),
    ``power * log_ratio`` of the row's bin, zero for people whose head is not seen (arguments as
    `apply_head_ruler`, which adds them to the charts with `weigh_charts`)."""
    size = fine_segm.shape[-1]
    top, height, seen = head_extent(coarse_segm, fine_segm, min_head)
    rows = torch.arange(size, device=fine_segm.device, dtype=torch.float32)
    d = (rows[None] - top[:, None].float()) / height[:, None]  # (N, S)
    weight = log_ratio[:, 1:].float()[ruler_bins(d)] * power  # (N, S, 24)
    weight = weight * seen[:, None, None].float()
    return weight.permute(0, 2, 1)[:, :, :, None]
