"""A skeleton prior: which charts a pixel can hold, from the bone of MoveNet's keypoints nearest to it.

The DensePose head, trained on renders, confuses a person's left leg with their right (8 % of
the renders' points, scoring nothing), an upper arm lying on the torso with the torso, hands and
lower arms with their neighbours (MODELS.md, "Where the renders' GPS is lost"). MoveNet
(`densepose.modeling.movenet`), trained on COCO's real people, places the 17 keypoints with
left and right as COCO's annotators saw them. The prior turns them into chart weights:

* `bone_bins`: each pixel's bin: the nearest of the ``BONES`` (segments between keypoints, both
  ends seen: score >= ``MIN_KEYPOINT_SCORE``), where along it the pixel projects (before its
  start, first half, second half, past its end: a hand lies past the wrist) and how far from it
  (``DISTANCE_EDGES``, in heights of the person's crop); ``NO_BONE`` when no bone is seen;
* `skeleton_log_ratio`: from chart counts per bin on renders
  (``densepose.engine.skeleton_prior_fit``), ``log P(chart | bin) / P(chart)``, smoothed and
  clipped, as the head ruler's (`densepose.modeling.head_ruler.chart_log_ratio`);
* `skeleton_log_weight`: per person and map pixel, the log ratios of its bin (times ``power``),
  which `DensePoseRCNN.settle_charts` adds to the ruler's and the facing's log weights.

Keypoints and maps meet in image pixels: the keypoints come in crop pixels of the crop box
(`densepose.modeling.facing.crop_boxes`), the map's cells are the centres of an S x S grid over
the DensePose box; distances are measured in the crop box's height, which the counting uses as well.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from densepose.modeling.facing import crop_boxes
from densepose.modeling.facing_people import PEOPLE_CROP
from densepose.modeling.head_ruler import chart_log_ratio
from densepose.modeling.movenet import MoveNetKeypoints, keypoints_in_image

#: Virtual keypoints appended to MoveNet's 17: the mid-shoulder (17) and the mid-hip (18).
MID_SHOULDER, MID_HIP = 17, 18
#: Bones: (start, end) keypoint indices (COCO order, then the two virtual ones).
BONES: tuple[tuple[int, int], ...] = (
    (0, MID_SHOULDER), (3, 4), (MID_SHOULDER, MID_HIP), (5, 11), (6, 12),  # head, neck, torso
    (5, 7), (6, 8), (7, 9), (8, 10),  # upper arms, lower arms (left, right)
    (11, 13), (12, 14), (13, 15), (14, 16),  # thighs, shins
)
#: Where along the bone: before its start, first half, second half, past its end.
ALONG_EDGES = (0.0, 0.5, 1.0)
#: Distance from the bone, in heights of the person's crop box: bins below each edge and one beyond.
DISTANCE_EDGES = (0.015, 0.035, 0.07)
BINS_PER_BONE = (len(ALONG_EDGES) + 1) * (len(DISTANCE_EDGES) + 1)
#: The bin of pixels with no bone seen; the bins number one more.
NO_BONE = len(BONES) * BINS_PER_BONE
SKELETON_BINS = NO_BONE + 1
#: A keypoint is used when MoveNet scores it at least this.
MIN_KEYPOINT_SCORE = 0.3


class NearestBone(NamedTuple):
    """Where pixels lie by the nearest seen bone of their person (`nearest_bone`), each (N, P)."""

    bone: Tensor  # int64 index into ``BONES``
    along: Tensor  # the pixel's projection on the bone: 0 at its start, 1 at its end
    left: Tensor  # bool: on the left of the bone seen from its start to its end (image axes, y down)
    distance: Tensor  # from the bone, in crop heights; inf where no bone is seen


class Skeleton(NamedTuple):
    """People's keypoints and where their maps lie, for `skeleton_log_weight` and
    `densepose.modeling.skeleton_uv.blend_uv`."""

    keypoints: Tensor  # (N, 17, 3) x, y in image pixels, score
    scale: Tensor  # (N,) the crop boxes' heights
    map_boxes: Tensor  # (N, 4) xyxy boxes the maps cover
    bones: NearestBone | None = None  # the map cells' nearest bones, found once for both priors (`on_map`)


def crop_keypoints(keypoint_net: MoveNetKeypoints, taps: dict[int, Tensor], boxes: Tensor) -> tuple[Tensor, Tensor]:
    """MoveNet on the people trunk's ``taps`` of the (K, 3, *PEOPLE_CROP) crops of (K, 4) xyxy
    ``boxes`` (`densepose.modeling.facing.person_crops`) -> (K, 17, 3) keypoints in the boxes'
    image pixels and (K,) crop heights: a `Skeleton`'s ``keypoints`` and ``scale``."""
    crop_box = crop_boxes(boxes.float())
    return keypoints_in_image(keypoint_net(taps), crop_box, PEOPLE_CROP), crop_box[:, 3] - crop_box[:, 1]


def with_virtual_keypoints(keypoints: Tensor) -> Tensor:
    """(N, 17, 3) x, y, score -> (N, 19, 3) with the mid-shoulder and mid-hip (score: the lower of the two)."""
    def middle(a: int, b: int) -> Tensor:
        xy = (keypoints[:, a, :2] + keypoints[:, b, :2]) / 2
        return torch.cat([xy, torch.minimum(keypoints[:, a, 2:], keypoints[:, b, 2:])], 1)[:, None]
    return torch.cat([keypoints, middle(5, 6), middle(11, 12)], 1)


def bucket(values: Tensor, edges: tuple[float, ...]) -> Tensor:
    """How many of ``edges`` each value reaches (comparisons, not ``bucketize``: the graph export has them)."""
    return (values[..., None] >= values.new_tensor(edges)).sum(-1)


def nearest_bone(points: Tensor, keypoints: Tensor, scale: Tensor) -> NearestBone:
    """The nearest of the ``BONES`` whose two ends are seen (score >= ``MIN_KEYPOINT_SCORE``).

    Args:
        points: (N, P, 2) x, y of each person's pixels (image pixels).
        keypoints: (N, 17, 3) x, y (image pixels), score.
        scale: (N,) the length distances are measured in (the crop box's height).
    """
    full = with_virtual_keypoints(keypoints.float())
    start = full[:, [a for a, _ in BONES]]  # (N, B, 3)
    end = full[:, [b for _, b in BONES]]
    seen = (start[..., 2] >= MIN_KEYPOINT_SCORE) & (end[..., 2] >= MIN_KEYPOINT_SCORE)  # (N, B)
    # x and y apart, each (N, P, B): (N, P, B, 2) temporaries and a norm cost twice the time.
    ax, ay = (end[:, None, :, i] - start[:, None, :, i] for i in (0, 1))  # (N, 1, B)
    rx, ry = (points[:, :, i, None].float() - start[:, None, :, i] for i in (0, 1))
    t = (rx * ax + ry * ay) / (ax * ax + ay * ay).clamp(min=1e-6)
    clamped = t.clamp(0, 1)
    nx, ny = rx - clamped * ax, ry - clamped * ay
    squared = (nx * nx + ny * ny).masked_fill(~seen[:, None], float("inf"))
    nearest, bone = squared.min(-1)  # (N, P)
    at = bone[..., None]
    left = (ax * ry - ay * rx).gather(-1, at)[..., 0] > 0
    distance = nearest.sqrt() / scale.float().clamp(min=1e-6)[:, None]
    return NearestBone(bone, t.gather(-1, at)[..., 0], left, distance)


def bone_bins(points: Tensor, keypoints: Tensor, scale: Tensor) -> Tensor:
    """Skeleton bins of pixels (arguments as `nearest_bone`) -> (N, P) int64 bin indices in 0 ..
    SKELETON_BINS - 1: the nearest bone, where along it, how far from it (module docstring)."""
    return bins_of(nearest_bone(points, keypoints, scale))


def bins_of(near: NearestBone) -> Tensor:
    """`bone_bins` of pixels whose nearest bones are found."""
    along = bucket(near.along, ALONG_EDGES)
    far = bucket(near.distance.clamp(max=1e6), DISTANCE_EDGES)
    bins = near.bone * BINS_PER_BONE + along * (len(DISTANCE_EDGES) + 1) + far
    return torch.where(torch.isfinite(near.distance), bins, torch.full_like(bins, NO_BONE))


def skeleton_log_ratio(counts: Tensor) -> Tensor:
    """(SKELETON_BINS, 25) pixel counts of each chart per bin (column 0 unused) -> (SKELETON_BINS,
    25) ``log P(chart | bin) / P(chart)`` (`densepose.modeling.head_ruler.chart_log_ratio`), zero
    in the ``NO_BONE`` bin."""
    if counts.shape != (SKELETON_BINS, 25):
        raise ValueError(f"skeleton prior counts: expected shape ({SKELETON_BINS}, 25), got {tuple(counts.shape)}")
    return chart_log_ratio(counts, NO_BONE)


def map_cell_centres(boxes: Tensor, size: int) -> Tensor:
    """(N, 4) xyxy boxes -> (N, size * size, 2) x, y of the centres of a size x size grid over each, row by row."""
    steps = (torch.arange(size, device=boxes.device, dtype=torch.float32) + 0.5) / size
    x = boxes[:, None, 0] + steps[None] * (boxes[:, 2] - boxes[:, 0])[:, None]  # (N, S)
    y = boxes[:, None, 1] + steps[None] * (boxes[:, 3] - boxes[:, 1])[:, None]
    grid = torch.stack([x[:, None, :].expand(-1, size, -1), y[:, :, None].expand(-1, -1, size)], -1)
    return grid.reshape(-1, size * size, 2)


def map_bones(skeleton: Skeleton, size: int) -> NearestBone:
    """The nearest bones of the cells of each person's S x S map (``size``: S), as found by `on_map`
    or found now."""
    if skeleton.bones is not None and skeleton.bones.bone.shape[-1] == size * size:
        return skeleton.bones
    return nearest_bone(map_cell_centres(skeleton.map_boxes.float(), size), skeleton.keypoints, skeleton.scale)


def on_map(skeleton: Skeleton, size: int) -> Skeleton:
    """``skeleton`` with its S x S maps' nearest bones found, once for the chart and U, V priors."""
    return skeleton._replace(bones=map_bones(skeleton, size))


def values_on_map(table: Tensor, bins: Tensor, size: int) -> Tensor:
    """(B, C) values per bin and the (N, S * S) bins of each person's S x S map (``size``: S) ->
    (N, C, S, S), a view of the gathered rows: whole rows of a bin-major table, then viewed
    channel-first, are a tenth of the time of a gather along the bins of a channel-first table."""
    n = bins.shape[0]
    rows = table.index_select(0, bins.reshape(-1)).view(n, size * size, table.shape[1])
    return rows.permute(0, 2, 1).unflatten(-1, (size, size))


def skeleton_log_weight(skeleton: Skeleton, size: int, log_ratio: Tensor, power: float = 1.0) -> Tensor:
    """The prior's log weights of charts 1..24 over each person's S x S map (``size``: S), from
    (SKELETON_BINS, 25) ``log_ratio`` (`skeleton_log_ratio`) times ``power`` -> (N, 24, S, S)."""
    return values_on_map(log_ratio[:, 1:].float() * power, bins_of(map_bones(skeleton, size)), size)
