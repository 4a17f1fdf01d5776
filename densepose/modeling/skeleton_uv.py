"""U, V from the skeleton: where a pixel lies by MoveNet's nearest bone says where on its chart it is.

The DensePose head, trained on renders, places points inside a chart coarsely (MODELS.md, "Where
the renders' GPS is lost"). MoveNet's keypoints (`densepose.modeling.skeleton_prior`) say more
about it than about the chart alone: how far along the forearm a pixel lies is how far along the
lower-arm chart it is, and which side of the bone it lies on says which half of the limb's
circumference the camera sees. The U, V prior turns this into numbers:

* `uv_bins`: each pixel's bin: the nearest seen bone (`skeleton_prior.nearest_bone`), where along
  it in ``UV_ALONG`` steps (and before its start, past its end), on its left or its right, and
  how far from it (the skeleton prior's ``DISTANCE_EDGES``);
* `uv_sums` and `uv_stats`: over renders (``densepose add-skeleton-prior``), per bin and chart,
  the mean of the dense truth's U and V and their precision (1 / variance); 0 precision where
  fewer than ``MIN_UV_COUNT`` pixels were counted;
* `blend_uv`: each chart's U and V maps moved towards their bin's means by the weight
  ``s p / (1 + s p)``, with ``p`` the bin's precision and ``s`` the variance of the head's own
  error (``ModelConfig.skeleton_uv_variance``): the inverse-variance average of two estimates.
"""
from __future__ import annotations

import torch
from torch import Tensor

from densepose.modeling.skeleton_prior import (
    BONES, DISTANCE_EDGES, NearestBone, Skeleton, bucket, map_bones, nearest_bone, values_on_map,
)

#: Steps along a bone from its start to its end; one bin more before the start and one past the end.
UV_ALONG = 8
UV_BINS_PER_BONE = (UV_ALONG + 2) * 2 * (len(DISTANCE_EDGES) + 1)
#: The bin of pixels with no bone seen (its precision is 0: the head's U, V stay); the bins number one more.
UV_NO_BONE = len(BONES) * UV_BINS_PER_BONE
UV_BINS = UV_NO_BONE + 1
#: A bin's means are used where at least this many pixels of the chart were counted in it.
MIN_UV_COUNT = 30
#: The smallest variance a bin is taken to have (its precision is at most the inverse).
MIN_UV_VARIANCE = 1e-4


def uv_bins(points: Tensor, keypoints: Tensor, scale: Tensor) -> Tensor:
    """(N, P, 2) pixels, (N, 17, 3) keypoints, (N,) crop heights (as `nearest_bone`) -> (N, P)
    int64 bins in 0 .. UV_BINS - 1."""
    return uv_bins_of(nearest_bone(points, keypoints, scale))


def uv_bins_of(near: NearestBone) -> Tensor:
    """`uv_bins` of pixels whose nearest bones are found."""
    along = (near.along * UV_ALONG).floor().clamp(-1, UV_ALONG).long() + 1
    far = bucket(near.distance.clamp(max=1e6), DISTANCE_EDGES)
    bins = near.bone * UV_BINS_PER_BONE + (along * 2 + near.left.long()) * (len(DISTANCE_EDGES) + 1) + far
    return torch.where(torch.isfinite(near.distance), bins, torch.full_like(bins, UV_NO_BONE))


def uv_sums(bins: Tensor, charts: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """Pixels' (P,) bins, charts (0..24), U and V -> (UV_BINS, 25, 5) float64: count, sum of U, of
    V, of U², of V² per bin and chart (summed over renders by the fit)."""
    u, v = u.double(), v.double()
    values = torch.stack([torch.ones_like(u), u, v, u * u, v * v], 1)
    sums = torch.zeros(UV_BINS * 25, 5, dtype=torch.float64)
    return sums.index_add_(0, bins.long() * 25 + charts.long(), values).view(UV_BINS, 25, 5)


def uv_stats(sums: Tensor) -> Tensor:
    """(UV_BINS, 25, 5) `uv_sums` -> (UV_BINS, 25, 4) float32: mean U, mean V, precision of U, of V
    (0 for chart 0, for the no-bone bin and where fewer than ``MIN_UV_COUNT`` pixels were counted)."""
    if sums.shape != (UV_BINS, 25, 5):
        raise ValueError(f"skeleton U, V sums: expected shape ({UV_BINS}, 25, 5), got {tuple(sums.shape)}")
    count = sums[..., :1]
    mean = sums[..., 1:3] / count.clamp(min=1)
    variance = (sums[..., 3:5] / count.clamp(min=1) - mean * mean).clamp(min=MIN_UV_VARIANCE)
    precision = torch.where(count >= MIN_UV_COUNT, 1.0 / variance, torch.zeros_like(variance))
    precision[:, 0] = 0
    precision[UV_NO_BONE] = 0
    return torch.cat([mean, precision], -1).float()


def blend_uv(u: Tensor, v: Tensor, skeleton: Skeleton, stats: Tensor, head_variance: float) -> tuple[Tensor, Tensor]:
    """People's U and V maps moved towards their bins' means (module docstring).

    Args:
        u, v: (N, 25, S, S) the DensePose head's U and V of each chart (channel 0 unused).
        skeleton: the people's keypoints and where their maps lie.
        stats: (UV_BINS, 25, 4) from `uv_stats`.
        head_variance: the variance of the head's own U, V error.

    Returns:
        u, v: (N, 25, S, S), channel 0 as it was.
    """
    size = u.shape[-1]
    bins = uv_bins_of(map_bones(skeleton, size))  # (N, S*S)
    table = stats[:, 1:].float()  # (UV_BINS, 24, 4)
    weight = table[..., 2:] * head_variance
    weight = weight / (1 + weight)  # (UV_BINS, 24, 2) on the means
    keep, shift = 1 - weight, weight * table[..., :2]  # map' = keep * map + shift
    table = torch.stack([keep[..., 0], shift[..., 0], keep[..., 1], shift[..., 1]], 1).reshape(UV_BINS, 4 * 24)
    rows = values_on_map(table, bins, size).unflatten(1, (4, 24))  # (N, 4, 24, S, S), a view

    def blend(maps: Tensor, keep: Tensor, shift: Tensor) -> Tensor:
        return torch.cat([maps[:, :1], torch.addcmul(shift, keep, maps[:, 1:].float()).to(maps.dtype)], 1)

    return blend(u, rows[:, 0], rows[:, 1]), blend(v, rows[:, 2], rows[:, 3])
