"""IoU matching and balanced fg/bg sampling (shared by the RPN and the ROI heads)."""
from __future__ import annotations

import torch
from torch import Tensor


def match(iou: Tensor, fg_thresh: float, bg_thresh: float, allow_low_quality: bool) -> tuple[Tensor, Tensor]:
    """Match predictions to GT from an IoU matrix (G, N).

    Returns ``(matched_gt (N,) long, labels (N,) int8)`` with labels 1 fg (IoU >= fg_thresh),
    0 bg (IoU < bg_thresh), -1 ignored (in between). With ``allow_low_quality`` every GT also claims
    the predictions that reach its own best IoU (RPN rule, so small GT boxes get an anchor).
    With no GT, everything is background.
    """
    n = iou.shape[1]
    if iou.shape[0] == 0:
        return iou.new_zeros(n, dtype=torch.long), iou.new_zeros(n, dtype=torch.int8)
    best, matched = iou.max(dim=0)
    labels = torch.full((n,), -1, dtype=torch.int8, device=iou.device)
    labels[best < bg_thresh] = 0
    labels[best >= fg_thresh] = 1
    if allow_low_quality:
        best_per_gt = iou.max(dim=1, keepdim=True).values
        claim = ((iou == best_per_gt) & (best_per_gt > 0)).any(dim=0)
        labels[claim] = 1
    return matched, labels


def sample_fg_bg(labels: Tensor, batch_size: int, positive_fraction: float,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Randomly pick at most ``batch_size * positive_fraction`` fg (label 1) and fill with bg (0).

    Returns (fg indices, bg indices).
    """
    fg = torch.nonzero(labels == 1).squeeze(1)
    bg = torch.nonzero(labels == 0).squeeze(1)
    n_fg = min(fg.numel(), int(batch_size * positive_fraction))
    n_bg = min(bg.numel(), batch_size - n_fg)
    fg = fg[torch.randperm(fg.numel(), device=fg.device, generator=generator)[:n_fg]] if n_fg < fg.numel() else fg
    bg = bg[torch.randperm(bg.numel(), device=bg.device, generator=generator)[:n_bg]] if n_bg < bg.numel() else bg
    return fg, bg
