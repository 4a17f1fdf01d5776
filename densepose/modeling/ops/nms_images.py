"""Greedy NMS of a batch of images at once (the RPN's proposals in training on a GPU).

`batched_nms` image by image costs a fixed handful of small device calls and host syncs per block
of boxes per image; for 16 images of ~3,800 proposals that is thousands of calls, each a kernel
launch on a GPU. `batched_nms_per_image` pads the images into one (B, N) batch and settles the
k-th block of every image together: the calls and syncs of a round do not grow with the number
of images. Each image's result is exactly `batched_nms` of that image.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from densepose.modeling.ops.boxes import box_area, greedy_scan, iou_above


def batched_nms_per_image(boxes: Tensor, scores: Tensor, groups: Tensor, valid: Tensor, iou_threshold: float,
                          max_output: int | None = None, block: int = 1024) -> list[Tensor]:
    """Per image i of a padded batch: the indices into ``boxes[i]`` that `batched_nms` keeps of the
    image's valid boxes (``boxes[i][valid[i]]``, the same boxes kept), by decreasing score, at most
    ``max_output`` of them. ``boxes`` (B, N, 4), ``scores`` (B, N) (finite where valid),
    ``groups`` (B, N) or (N,) (class or FPN level), ``valid`` (B, N) bool.

    Memory is O(B * block * N): meant for a GPU. On a CPU the image-by-image `batched_nms` compacts
    the surviving boxes and is cheaper.
    """
    n_img, n = valid.shape
    device, dtype = boxes.device, boxes.dtype
    if n_img == 0 or n == 0:
        return [torch.empty(0, dtype=torch.long, device=device) for _ in range(n_img)]
    counts = valid.sum(dim=1)
    # Groups apart as `batched_nms` separates them, with the same arithmetic (the same floats); a
    # dummy column n, area 0, that padding indices point to and that suppresses nothing.
    lo = torch.where(valid[..., None], boxes, torch.inf).amin(dim=(1, 2))
    hi = torch.where(valid[..., None], boxes, -torch.inf).amax(dim=(1, 2))
    offsets = groups.expand(n_img, n).to(dtype) * (hi - lo + 1)[:, None]
    shifted = torch.where(valid[..., None], boxes - lo[:, None, None] + offsets[..., None], 0)
    shifted = torch.cat([shifted, shifted.new_zeros(n_img, 1, 4)], dim=1)
    sc = torch.where(valid, scores, -torch.inf)
    order = torch.sort(sc, dim=1, descending=True, stable=True).indices  # padding sorts last
    order = torch.cat([order, torch.full((n_img, 1), n, device=device)], dim=1)
    b = shifted.gather(1, order[..., None].expand(-1, -1, 4))
    area = box_area(b.view(-1, 4)).view(n_img, n + 1)
    column = torch.arange(n + 1, device=device)
    keep = column[None, :] < counts[:, None]  # sorted: the valid ones first
    start = torch.zeros(n_img, dtype=torch.long, device=device)  # first undecided position per image
    finished = counts == 0  # (B,) on the device; its host copy decides the loop
    rows = torch.arange(n_img, device=device)[:, None]
    while not bool(finished.all()):
        alive = keep & (column[None, :] >= start[:, None]) & ~finished[:, None]
        cand_mask = alive & (alive.cumsum(1) <= block)
        cand = torch.where(cand_mask, column, n).sort(dim=1).values[:, :block]  # (B, block); n = none
        cand_ok = cand < n
        blk, blk_area = b[rows, cand], area[rows, cand]
        over = torch.triu(iou_above(blk, blk, iou_threshold, blk_area, blk_area), diagonal=1)
        over &= cand_ok[:, :, None] & cand_ok[:, None, :]
        decided = torch.from_numpy(np.stack([greedy_scan(o) for o in over.cpu().numpy()])).to(device) & cand_ok
        keep[rows, cand] = decided | ~cand_ok & keep[rows, cand]  # the dummy column keeps its value
        last = torch.where(cand_ok, cand, -1).amax(dim=1)
        later = column[None, :] > last[:, None]
        keep &= ~(iou_above(blk, b, iou_threshold, blk_area, area) & decided[:, :, None]).any(dim=1) | ~later
        start = torch.where(last >= 0, last + 1, start)
        kept_so_far = (keep & ~later).sum(dim=1)
        stop = ~(keep & later).any(dim=1)
        if max_output is not None:
            full = kept_so_far >= max_output
            keep &= ~(full[:, None] & later)
            stop |= full
        finished = finished | stop
    keep[:, n] = False
    out = order[keep]  # kept boxes, image by image, by decreasing score
    kept = keep.sum(dim=1).tolist()
    result = list(torch.split(out, kept))
    return result if max_output is None else [r[:max_output] for r in result]
