"""The box head at test time, read once or again at the boxes it regressed (iterative localisation).

A proposal the RPN placed badly (around half of a person lying down, around a pair) is read by the
box head from the features under that proposal: its score and its regressed box are both judged
from a window that holds only part of the person. Reading the head again at the box it regressed
scores and moves the box from the features of where the person now is (the iterative
localisation of Gidaris and Komodakis, ICCV 2015; Cascade R-CNN's test time does the same with
one head per stage). Each row's box and score are the means of its passes: the second pass alone
moves boxes that were right, and its scores were learnt on proposals, not on regressed boxes.

Only rows scoring at least ``again_min_score`` after the first pass are read again (RoIAlign of
every proposal is most of the head's time); the rest keep their first answer.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from densepose.modeling.ops import clip_boxes, decode_boxes

# (boxes per image, each (K_i, 4)) -> (logits (sum K_i, 2), deltas (sum K_i, 4)), rows in that order
BoxReader = Callable[[list[Tensor]], "tuple[Tensor, Tensor]"]


def read_boxes(read: BoxReader, proposals: list[Tensor], sizes: Sequence[tuple], weights: tuple[float, ...],
               passes: int = 1, again_min_score: float = 0.0) -> tuple[list[Tensor], list[Tensor]]:
    """Per image proposals (P_i, 4) -> per image person scores (P_i,) and boxes (P_i, 4) clipped to
    their image's (h, w) in ``sizes``, the means over ``passes`` reads of the box head (``read``) for
    the rows scoring >= ``again_min_score`` after the first read, one read for the others."""
    logits, deltas = read(proposals)
    scores = F.softmax(logits, dim=1)[:, 1]
    boxes = _clipped(decode_boxes(deltas, torch.cat(proposals), weights), proposals, sizes)
    if passes <= 1:
        return _split(scores, proposals), _split(boxes, proposals)
    again = torch.nonzero(scores >= again_min_score).squeeze(1)
    group = _grouping(again, proposals)
    score_sum, last = scores[again], boxes[again]
    box_sum = last
    for _ in range(passes - 1):
        per_image = group(last)
        logits, deltas = read(per_image)
        last = _clipped(decode_boxes(deltas, last, weights), per_image, sizes)
        score_sum = score_sum + F.softmax(logits, dim=1)[:, 1]
        box_sum = box_sum + last
    scores = scores.index_put((again,), score_sum / passes)
    boxes = boxes.index_put((again,), box_sum / passes)
    return _split(scores, proposals), _split(boxes, proposals)


def _grouping(rows: Tensor, proposals: list[Tensor]) -> Callable[[Tensor], list[Tensor]]:
    """Ascending indices ``rows`` into the images' proposals, concatenated -> a function that
    splits a tensor of those rows by image. One image is never split, so a traced graph keeps its
    dynamic sizes."""
    if len(proposals) == 1:
        return lambda values: [values]
    image = torch.cat([torch.full((p.shape[0],), i, device=rows.device) for i, p in enumerate(proposals)])
    counts = [int((image[rows] == i).sum()) for i in range(len(proposals))]
    return lambda values: list(values.split(counts))


def _clipped(boxes: Tensor, per_image: list[Tensor], sizes: Sequence[tuple]) -> Tensor:
    """Rows (N, 4) grouped as ``per_image`` -> each clipped to its image's (h, w)."""
    if len(per_image) == 1:
        return clip_boxes(boxes, *sizes[0])
    parts = boxes.split([b.shape[0] for b in per_image])
    return torch.cat([clip_boxes(part, h, w) for part, (h, w) in zip(parts, sizes)])


def _split(rows: Tensor, per_image: list[Tensor]) -> list[Tensor]:
    return [rows] if len(per_image) == 1 else list(rows.split([b.shape[0] for b in per_image]))
