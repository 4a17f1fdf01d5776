"""The image-by-image sampling code that the batched code of the RPN and the ROI heads replaced,
kept as the tests' reference: with nothing left to a random draw, the batch must give its answers."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from densepose.modeling.matching import match
from densepose.modeling.ops import box_iou, encode_boxes
from densepose.modeling.rpn import _smooth_l1


def sample_fg_bg(labels: Tensor, batch_size: int, positive_fraction: float) -> tuple[Tensor, Tensor]:
    """At most ``batch_size * positive_fraction`` fg (label 1) indices, filled with bg (0) indices."""
    fg = torch.nonzero(labels == 1).squeeze(1)
    bg = torch.nonzero(labels == 0).squeeze(1)
    n_fg = min(fg.numel(), int(batch_size * positive_fraction))
    n_bg = min(bg.numel(), batch_size - n_fg)
    fg = fg[torch.randperm(fg.numel())[:n_fg]] if n_fg < fg.numel() else fg
    bg = bg[torch.randperm(bg.numel())[:n_bg]] if n_bg < bg.numel() else bg
    return fg, bg


def sample_proposals(proposals: list[Tensor], gt_boxes: list[Tensor], cfg) -> list[dict[str, Tensor]]:
    """Per image: boxes (K, 4), is_fg, gt_index, iou (K,), foreground first."""
    out = []
    for props, gt in zip(proposals, gt_boxes):
        boxes = torch.cat([props, gt.to(props.dtype)])
        iou = box_iou(gt, boxes)
        matched, labels = match(iou, cfg.roi_fg_iou, cfg.roi_fg_iou, allow_low_quality=False)
        fg, bg = sample_fg_bg(labels, cfg.roi_batch_size_per_image, cfg.roi_positive_fraction)
        idx = torch.cat([fg, bg])
        best = iou.max(dim=0).values if gt.shape[0] else boxes.new_zeros(boxes.shape[0])
        is_fg = torch.zeros(idx.numel(), dtype=torch.bool)
        is_fg[: fg.numel()] = True
        out.append({"boxes": boxes[idx], "is_fg": is_fg, "gt_index": matched[idx], "iou": best[idx]})
    return out


def box_losses(logits: Tensor, deltas: Tensor, samples: list[dict[str, Tensor]], gt_boxes: list[Tensor],
               weights, beta: float) -> dict[str, Tensor]:
    """CE over every sampled proposal; L1 on the foreground deltas, summed, / #sampled."""
    labels = torch.cat([s["is_fg"].long() for s in samples])
    fg = torch.cat([s["is_fg"] for s in samples])
    ref = torch.cat([s["boxes"][s["is_fg"]] for s in samples])
    matched = torch.cat([gt[s["gt_index"][s["is_fg"]]] for s, gt in zip(samples, gt_boxes)])
    reg = _smooth_l1(deltas[fg], encode_boxes(ref, matched, weights), beta).sum() / max(1, labels.numel())
    return {"loss_cls": F.cross_entropy(logits, labels), "loss_box_reg": reg}


def densepose_rois(samples: list[dict[str, Tensor]], targets: list[dict], fg_iou: float) -> tuple[list, list]:
    """Per image the foreground boxes that train the DensePose head (IoU > fg_iou, the person has
    DensePose data) and their index among the batch's people with DensePose data (no cap)."""
    n_dp, sel_boxes, sel_gt = 0, [], []
    for s, t in zip(samples, targets):
        dps = t.get("dp") or [None] * t["boxes"].shape[0]
        gmap = torch.full((len(dps),), -1, dtype=torch.long)
        for g, d in enumerate(dps):
            if d is not None:
                gmap[g] = n_dp
                n_dp += 1
        fg_gt = s["gt_index"][s["is_fg"]]
        dpg = gmap[fg_gt] if fg_gt.numel() else fg_gt
        keep = (s["iou"][s["is_fg"]] > fg_iou) & (dpg >= 0)
        sel_boxes.append(s["boxes"][s["is_fg"]][keep])
        sel_gt.append(dpg[keep])
    return sel_boxes, sel_gt
