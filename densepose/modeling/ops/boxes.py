"""Box utilities: area, pairwise IoU, clipping, delta coding and NMS.

Boxes are ``(N, 4)`` float tensors ``[x0, y0, x1, y1]`` in pixels (``x1``/``y1`` exclusive edges,
so the width is ``x1 - x0``, as in detectron2 and torchvision). ``box_iou_xywh`` is the NumPy
box IoU of the code outside the model (evaluation, tracking): COCO ``[x, y, w, h]`` boxes in
float64 with the crowd rule, in pycocotools' arithmetic (areas ``w * h``), so that the evaluator
reproduces the official numbers bit for bit.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

#: Largest log-scale a predicted ``dw``/``dh`` may have: exp(clamp) * 16 px = 1000 px at most.
BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def box_area(boxes: Tensor) -> Tensor:
    """(..., N, 4) -> (..., N)."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def box_intersection(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise intersection areas of (..., N, 4) and (..., M, 4) xyxy boxes -> (..., N, M) (the
    leading axes, a batch of images, broadcast)."""
    lt = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    rb = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    return wh[..., 0] * wh[..., 1]


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise IoU of (..., N, 4) and (..., M, 4) boxes -> (..., N, M); empty boxes give IoU 0."""
    inter = box_intersection(a, b)
    union = box_area(a)[..., :, None] + box_area(b)[..., None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def vote_boxes(kept: Tensor, boxes: Tensor, weights: Tensor, iou_threshold: float) -> Tensor:
    """Box voting (Gidaris & Komodakis, ICCV 2015): each kept box (K, 4) -> (K, 4), the mean of the
    ``boxes`` (N, 4) that overlap it by IoU >= ``iou_threshold``, weighted by ``weights`` (N,) (their
    scores; 0 for boxes that do not vote). The box head regresses every proposal near a person on its
    own; their weighted mean lies closer to the person than the one box NMS keeps. Each box votes
    for the kept box it overlaps most only, so a box between two people side by side does not pull
    them together. A kept box with no voter stays as it is."""
    # A last, empty row (IoU 0 with every box): argmax needs a row even when K is 0, and the
    # exported graph cannot branch on K.
    iou = box_iou(torch.cat([kept.float(), kept.new_zeros((1, 4), dtype=torch.float32)]), boxes.float())  # (K + 1, N)
    nearest = (torch.arange(kept.shape[0] + 1, device=kept.device)[:, None] == iou.argmax(dim=0)[None, :])[:-1]
    w = ((iou[:-1] >= iou_threshold) & nearest) * weights.float()[None, :]  # (K, N)
    total = w.sum(dim=1, keepdim=True)
    voted = (w @ boxes.float()) / total.clamp(min=1e-12)
    return torch.where(total > 0, voted, kept.float()).to(kept.dtype)


def contained_fraction(a: Tensor, b: Tensor) -> Tensor:
    """(N, 4), (M, 4) xyxy -> (N, M): the fraction of each box of ``a`` lying inside each box of ``b``."""
    return box_intersection(a, b) / box_area(a)[:, None].clamp(min=1e-9)


def box_iou_xywh(dt: np.ndarray, gt: np.ndarray, gt_crowd: np.ndarray | None = None) -> np.ndarray:
    """IoU of COCO xywh boxes ``dt[..., :]`` and ``gt[..., :]`` (NumPy, broadcast), as pycocotools' ``bbIou``.

    (N, 4), (N, 4) -> (N,) for pairs; ``dt[:, None]``, ``gt[None]`` -> (N, M) for all pairs. A crowd
    GT (``gt_crowd``, broadcast like the boxes' leading axes) divides by the detection's area
    instead of the union. No overlap (or empty boxes): 0.
    """
    dt = np.asarray(dt, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    w = np.minimum(dt[..., 0] + dt[..., 2], gt[..., 0] + gt[..., 2]) - np.maximum(dt[..., 0], gt[..., 0])
    h = np.minimum(dt[..., 1] + dt[..., 3], gt[..., 1] + gt[..., 3]) - np.maximum(dt[..., 1], gt[..., 1])
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    da = dt[..., 2] * dt[..., 3]
    union = da + gt[..., 2] * gt[..., 3] - inter
    if gt_crowd is not None:
        union = np.where(gt_crowd, da, union)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(inter > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def clip_boxes(boxes: Tensor, height: int | Tensor, width: int | Tensor) -> Tensor:
    """Clip boxes (..., 4) to an image of (height, width); for a batch (B, N, 4) of images of
    different sizes, ``height`` and ``width`` may be (B, 1, 1) tensors."""
    x = boxes[..., 0::2].clamp(min=0).clamp(max=width)
    y = boxes[..., 1::2].clamp(min=0).clamp(max=height)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


def grow_boxes(boxes: Tensor, margin_x: float, margin_y: float) -> Tensor:
    """(N, 4) xyxy -> (N, 4) each box grown on every side by ``margin_x`` of its width (left and
    right) and ``margin_y`` of its height (top and bottom); not clipped."""
    w = (boxes[:, 2] - boxes[:, 0]) * margin_x
    h = (boxes[:, 3] - boxes[:, 1]) * margin_y
    return boxes + torch.stack([-w, -h, w, h], dim=1)


def nonempty(boxes: Tensor, min_size: float = 0.0) -> Tensor:
    """(N,) bool: width and height both > min_size."""
    return ((boxes[:, 2] - boxes[:, 0]) > min_size) & ((boxes[:, 3] - boxes[:, 1]) > min_size)


def encode_boxes(ref: Tensor, target: Tensor, weights: tuple[float, float, float, float]) -> Tensor:
    """Deltas (N, 4) ``(dx, dy, dw, dh)`` that turn ``ref`` (N, 4) into ``target`` (N, 4).

    R-CNN parameterisation: ``dx = wx * (cx_t - cx_r) / w_r``, ``dw = ww * log(w_t / w_r)``.
    The weights rescale the deltas so their variance is near one (RPN (1,1,1,1), box head
    (10,10,5,5)).
    """
    wx, wy, ww, wh = weights
    rw, rh = ref[:, 2] - ref[:, 0], ref[:, 3] - ref[:, 1]
    rx, ry = ref[:, 0] + 0.5 * rw, ref[:, 1] + 0.5 * rh
    tw, th = target[:, 2] - target[:, 0], target[:, 3] - target[:, 1]
    tx, ty = target[:, 0] + 0.5 * tw, target[:, 1] + 0.5 * th
    return torch.stack(
        [wx * (tx - rx) / rw, wy * (ty - ry) / rh, ww * torch.log(tw / rw), wh * torch.log(th / rh)], dim=1
    )


def decode_boxes(deltas: Tensor, ref: Tensor, weights: tuple[float, float, float, float]) -> Tensor:
    """Inverse of :func:`encode_boxes`: deltas (N, 4) applied to ``ref`` (N, 4) -> boxes (N, 4).

    ``dw``/``dh`` are clamped at :data:`BBOX_XFORM_CLIP` so an untrained head cannot produce inf.
    """
    wx, wy, ww, wh = weights
    deltas = deltas.to(ref.dtype)
    rw, rh = ref[:, 2] - ref[:, 0], ref[:, 3] - ref[:, 1]
    rx, ry = ref[:, 0] + 0.5 * rw, ref[:, 1] + 0.5 * rh
    dx, dy = deltas[:, 0] / wx, deltas[:, 1] / wy
    dw = (deltas[:, 2] / ww).clamp(max=BBOX_XFORM_CLIP)
    dh = (deltas[:, 3] / wh).clamp(max=BBOX_XFORM_CLIP)
    cx, cy = dx * rw + rx, dy * rh + ry
    w, h = torch.exp(dw) * rw, torch.exp(dh) * rh
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=1)


def iou_above(a: Tensor, b: Tensor, t: float, area_a: Tensor, area_b: Tensor) -> Tensor:
    """(..., N, M) bool: IoU(a_i, b_j) > t for boxes a (..., N, 4) and b (..., M, 4) (leading
    dimensions broadcast: one matrix per image of a batch), computed without a division and without
    (N, M, 2) temporaries; ``area_a`` (..., N) and ``area_b`` (..., M) are the boxes' areas (`nms`
    computes them once per call)."""
    w = (torch.minimum(a[..., :, None, 2], b[..., None, :, 2]) - torch.maximum(a[..., :, None, 0], b[..., None, :, 0]))
    h = (torch.minimum(a[..., :, None, 3], b[..., None, :, 3]) - torch.maximum(a[..., :, None, 1], b[..., None, :, 1]))
    inter = w.clamp_(min=0).mul_(h.clamp_(min=0))
    union = area_a[..., :, None] + area_b[..., None, :] - inter
    return (inter > t * union) & (union > 0)


def _greedy_in_block(over: Tensor) -> Tensor:
    """Greedy keep mask (M,) of a block of boxes by decreasing score, ``over`` (M, M) bool with
    ``over[i, j]`` (only for i < j) when box i would suppress box j. Decided on the host in one
    transfer (`greedy_scan`): on a GPU a loop of small kernels with a sync per round costs more
    than the scan."""
    return torch.from_numpy(greedy_scan(over.cpu().numpy())).to(over.device)


def greedy_scan(over: np.ndarray) -> np.ndarray:
    """The greedy rule on the host: keep mask (M,) of ``over`` (M, M) bool, upper triangular, scanning
    only the boxes that suppress another."""
    k = np.ones(len(over), dtype=bool)
    for i in np.flatnonzero(over.any(axis=1)):
        if k[i]:
            k &= ~over[i]  # row i is False up to its diagonal, so box i and those above stay
    return k


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float, block: int | None = None,
        max_output: int | None = None, groups: Tensor | None = None) -> Tensor:
    """Greedy NMS: indices (K,) of kept boxes, by decreasing score (same result as torchvision).

    Vectorised in blocks of ``block`` boxes, like the torchvision CUDA kernel: the block's
    suppression matrix is computed on the device and the greedy rule ``keep[j] = not any(keep[i]
    and iou[i, j] > t for i < j)`` is decided on the host in one scan of it (`_greedy_in_block`);
    the kept boxes of the block then suppress every later surviving box at once. Memory is
    O(block * N); the device sees a fixed handful of calls per block, never one per box. ``block``
    defaults to 256 on the CPU, where a larger block costs more arithmetic than it saves, and to
    1,024 elsewhere, where each block costs launches, syncs and a transfer. ``max_output``
    stops early once that many boxes are kept (the result is the first ``max_output`` of the full
    answer). ``groups`` (N,), when the caller knows that boxes of different groups never overlap
    (`batched_nms`), limits each block's suppression of the later boxes to its own group's: the
    same answer, without the IoU of every kept box with every other group's boxes.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    if block is None:
        block = 256 if boxes.device.type == "cpu" else 1024
    order = torch.sort(scores, descending=True, stable=True).indices  # stable: ties keep input order
    b = boxes[order]
    area = box_area(b)
    group = groups[order] if groups is not None else None
    n = b.shape[0]
    keep = torch.ones(n, dtype=torch.bool, device=b.device)
    pos = 0
    while pos < n:
        alive = torch.nonzero(keep[pos:]).squeeze(1) + pos  # undecided boxes, by score
        if alive.numel() == 0:
            break
        cand, rest = alive[:block], alive[block:]
        blk = b[cand]
        blk_area = area[cand]
        k = _greedy_in_block(torch.triu(iou_above(blk, blk, iou_threshold, blk_area, blk_area), diagonal=1))
        keep[cand] = k
        if rest.numel():
            if group is None:
                keep[rest] = ~iou_above(blk[k], b[rest], iou_threshold, blk_area[k], area[rest]).any(dim=0)
            else:
                kept, kept_group = cand[k], group[cand[k]]
                for g in torch.unique(kept_group):
                    same = rest[group[rest] == g]
                    by = kept[kept_group == g]
                    keep[same] = ~iou_above(b[by], b[same], iou_threshold, area[by], area[same]).any(dim=0)
        pos = int(cand[-1]) + 1
        if max_output is not None and int(keep[:pos].sum()) >= max_output:
            keep[pos:] = False
            break
    kept = order[keep]
    return kept if max_output is None else kept[:max_output]


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float,
                max_output: int | None = None) -> Tensor:
    """NMS run independently per group ``idxs`` (N,) (class or FPN level); kept indices by score.

    Groups are separated by offsetting each group's boxes by ``idx * (max coordinate + 1)`` so boxes
    of different groups never overlap; one NMS call handles all groups. On the CPU it is also told
    the groups, so that it compares each kept box with the later boxes of its own group only (a
    fifth less time for the RPN's five FPN levels); off the CPU one comparison of all costs fewer
    launches.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    offsets = idxs.to(boxes.dtype) * (boxes.max() - boxes.min() + 1)
    shifted = boxes - boxes.min() + offsets[:, None]
    groups = idxs if boxes.device.type == "cpu" else None
    return nms(shifted, scores, iou_threshold, max_output=max_output, groups=groups)
