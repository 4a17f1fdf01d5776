"""Testing at several image sizes: one image's detections at each size merged into one set.

A detector trained on renders finds a real person most reliably at the sizes its training people
had: a close-up photographed at full resolution is larger (and sharper) than most of them, the
same photo shrunk is not. Running the model at a second, smaller size and keeping the best box of
every overlapping group (class-agnostic NMS) finds both the small people of the first size and the
large people of the second. Every output of a detection (box, score, DensePose maps, masks,
keypoints) is box-relative or in input pixels, so detections of different sizes mix freely.

Each size is trusted with the people it sees best (as in SNIP, Singh & Davis, CVPR 2018): a size
other than the smallest keeps only detections at most ``max_height`` tall in its own pixels (a
close-up is found whole at the small size and in fragments at the large one), a size other than
the largest only those at least ``min_height`` tall (small people are found at the large size;
at the small one they are a few pixels of noise). `within_size_range` gives that filter.

The merge needs only boxes and scores, so the model merges first (`select_across_sizes`,
`gather_merged`), then runs its per-box heads on the kept detections alone, all on the largest
size's features: a size is trusted per box for finding people, but a close-up found at the small
size is labelled better from the finer features of the large one.
"""
from __future__ import annotations

import torch
from torch import Tensor

from densepose.modeling.group_boxes import group_boxes
from densepose.modeling.ops.boxes import nms


def within_size_range(boxes: Tensor, size: int, sizes: list[int], min_height: float, max_height: float) -> Tensor:
    """(N,) bool: which of the (N, 4) boxes found at test size ``size`` (in its resized pixels) it keeps.

    Of ``sizes`` (all the test sizes), every size but the smallest keeps boxes at most
    ``max_height`` tall, every size but the largest boxes at least ``min_height`` tall; a bound
    of 0 is no bound, and a single size keeps everything.
    """
    height = boxes[:, 3] - boxes[:, 1]
    keep = torch.ones(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    if max_height > 0 and size > min(sizes):
        keep &= height <= max_height
    if min_height > 0 and size < max(sizes):
        keep &= height >= min_height
    return keep


def select_across_sizes(boxes: list[Tensor], scores: list[Tensor], iou_threshold: float,
                        max_detections: int, drop_group_boxes: bool = False) -> tuple[list[Tensor], Tensor]:
    """One image's detections at K sizes -> (kept row indices of each size, order).

    Args:
        boxes: per size (N_k, 4) xyxy in input pixels; scores: per size (N_k,).
        iou_threshold: boxes overlapping a higher-scoring box by more than this are dropped.
        max_detections: most detections kept.
        drop_group_boxes: also drop the merged detections that box two people side by side
            (`densepose.modeling.group_boxes`).

    Returns:
        rows: per size a long tensor of kept indices into that size's detections.
        order: (M,) permutation: the kept rows of every size concatenated size after size, then
            indexed by ``order``, are the merged detections by decreasing score.
    """
    device = boxes[0].device
    counts = torch.tensor([b.shape[0] for b in boxes], device=device)
    all_boxes, all_scores = torch.cat(boxes).float(), torch.cat(scores).float()
    keep = nms(all_boxes, all_scores, iou_threshold, max_output=max_detections)
    if drop_group_boxes:
        keep = keep[~group_boxes(all_boxes[keep], all_scores[keep])]
    owner = torch.repeat_interleave(torch.arange(len(boxes), device=device), counts)[keep]
    local = keep - (counts.cumsum(0) - counts)[owner]
    positions = [torch.nonzero(owner == k).squeeze(1) for k in range(len(boxes))]
    return [local[p] for p in positions], torch.argsort(torch.cat(positions))


def gather_merged(per_size: list[dict[str, Tensor]], order: Tensor) -> dict[str, Tensor]:
    """Outputs of the kept rows of each size (dicts with the same keys) -> one dict in merged order."""
    return {key: torch.cat([out[key] for out in per_size])[order] for key in per_size[0]}
