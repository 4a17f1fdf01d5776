"""Boxes around a pair of people: detections that two other detections explain better.

A detector that has rarely seen people walking shoulder to shoulder learns to box the pair as
one "person" as well as each of them. Such a box has two confident detections inside it, side
by side, each nearly as tall as the box: it is dropped. A box holding smaller detections (a
fragment of a person, a person in front of a larger one) is kept: its members are not as tall
as it is.
"""
from __future__ import annotations

import torch
from torch import Tensor

from densepose.modeling.ops.boxes import box_iou, contained_fraction


def group_boxes(boxes: Tensor, scores: Tensor, member_score: float = 0.5, height_fraction: float = 0.75,
                inside_fraction: float = 0.8, max_member_iou: float = 0.3, width_cover: float = 0.7) -> Tensor:
    """Which detections are boxes around two people side by side.

    Box j is a group box when two other detections a, c (score >= ``member_score``) each lie
    inside j (>= ``inside_fraction`` of their area) and are at least ``height_fraction`` of j's
    height, overlap each other little (IoU < ``max_member_iou``) and together span at least
    ``width_cover`` of j's width.

    Args:
        boxes: (N, 4) xyxy (any pixel frame); scores: (N,).

    Returns:
        (N,) bool, True for group boxes.
    """
    # No branch on the count N: in the exported graph N comes from NMS, unknown until run time.
    boxes = boxes.float()
    index = torch.ones_like(scores, dtype=torch.long).cumsum(0)
    height = boxes[:, 3] - boxes[:, 1]
    width = boxes[:, 2] - boxes[:, 0]
    # member[j, i]: detection i is a full-height member of box j
    member = (contained_fraction(boxes, boxes).T >= inside_fraction) & (height[None, :] >= height_fraction * height[:, None])
    member &= (scores[None, :] >= member_score) & (index[:, None] != index[None, :])
    apart = box_iou(boxes, boxes) < max_member_iou  # (a, c)
    span = torch.maximum(boxes[:, None, 2], boxes[None, :, 2]) - torch.minimum(boxes[:, None, 0], boxes[None, :, 0])
    pair = member[:, :, None] & member[:, None, :] & apart[None] & (span[None] >= width_cover * width[:, None, None])
    return pair.flatten(1).any(1)
