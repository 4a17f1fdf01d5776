"""IoU matching and balanced fg/bg sampling (shared by the RPN and the ROI heads)."""
from __future__ import annotations

import torch
from torch import Tensor


def match(iou: Tensor, fg_thresh: float, bg_thresh: float, allow_low_quality: bool) -> tuple[Tensor, Tensor]:
    """Match predictions to GT from an IoU matrix (G, N), or a batch of them (B, G, N).

    Returns ``(matched_gt (..., N) long, labels (..., N) int8)`` with labels 1 fg (IoU >= fg_thresh),
    0 bg (IoU < bg_thresh), -1 ignored (in between). With ``allow_low_quality`` every GT also claims
    the predictions that reach its own best IoU (RPN rule, so small GT boxes get an anchor).
    With no GT, everything is background; in a batch, an image's padding rows of GT hold IoU -1
    (they match nothing and claim nothing).
    """
    if iou.shape[-2] == 0:
        shape = iou.shape[:-2] + iou.shape[-1:]
        return iou.new_zeros(shape, dtype=torch.long), iou.new_zeros(shape, dtype=torch.int8)
    best, matched = iou.max(dim=-2)
    labels = torch.full_like(best, -1, dtype=torch.int8)
    labels.masked_fill_(best < bg_thresh, 0)
    labels.masked_fill_(best >= fg_thresh, 1)
    if allow_low_quality:
        best_per_gt = iou.max(dim=-1, keepdim=True).values
        claim = ((iou == best_per_gt) & (best_per_gt > 0)).any(dim=-2)
        labels.masked_fill_(claim, 1)
    return matched, labels


def sample_fg_bg_masks(labels: Tensor, batch_size: int, positive_fraction: float) -> tuple[Tensor, Tensor]:
    """Balanced fg/bg sampling of every image of a batch at once, without a host sync: ``labels``
    (B, N) -> (fg, bg) (B, N) bool masks. Per image at most ``batch_size * positive_fraction`` fg drawn at
    random (each subset of that size equally likely), filled up to ``batch_size`` with bg."""
    n_img, n = labels.shape
    cap_fg = int(batch_size * positive_fraction)

    def draw(candidates: Tensor, k: int, count: Tensor | None) -> Tensor:
        # The k largest of iid uniform keys are a uniformly random k-subset of the candidates.
        keys = torch.where(candidates, torch.rand(labels.shape, device=labels.device), -1.0)
        top, idx = keys.topk(min(k, n), dim=1)
        take = top >= 0
        if count is not None:
            take &= torch.arange(top.shape[1], device=labels.device)[None, :] < count[:, None]
        return torch.zeros_like(candidates).scatter_(1, idx, take)

    fg = draw(labels == 1, cap_fg, None)
    bg = draw(labels == 0, batch_size, batch_size - fg.sum(dim=1))
    return fg, bg
