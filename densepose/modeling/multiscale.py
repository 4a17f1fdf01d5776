"""Testing at several image sizes: one image's detections at each size merged into one set.

A detector trained on renders finds a real person most reliably at the sizes its training people
had: a close-up photographed at full resolution is larger (and sharper) than most of them, the
same photo shrunk is not. Running the model at a second, smaller size and keeping the best box of
every overlapping group (class-agnostic NMS) finds both the small people of the first size and the
large people of the second. Every output of a detection (box, score, DensePose maps, masks,
keypoints) is box-relative or in input pixels, so detections of different sizes mix freely.
"""
from __future__ import annotations

import torch
from torch import Tensor

from densepose.modeling.ops.boxes import nms


def merge_scales(per_size: list[dict[str, Tensor]], iou_threshold: float, max_detections: int) -> dict[str, Tensor]:
    """One image's outputs at several sizes -> one output dict, by decreasing score.

    Args:
        per_size: eval outputs of the model for the same image (``boxes`` (N_k, 4) in input pixels,
            ``scores`` (N_k,), and any other per-detection tensors, first dimension N_k).
        iou_threshold: boxes overlapping a higher-scoring box by more than this are dropped.
        max_detections: most detections kept.
    """
    merged = {key: torch.cat([out[key] for out in per_size]) for key in per_size[0]}
    keep = nms(merged["boxes"].float(), merged["scores"].float(), iou_threshold, max_output=max_detections)
    return {key: value[keep] for key, value in merged.items()}
