"""Boxes that more confident detections already cover: a box straddling two found people.

Between two walkers found on their own the detector often draws a third box, over half of each
(or over one walker and a slice of the next). NMS keeps it, since it overlaps neither of them
by IoU 0.5; the person check often lets it pass, since its crop does hold a person. What gives
it away is that the confident detections around it already cover nearly all of it. A person
partly hidden behind another keeps the uncovered part of the box (the head above, the side
beside the one in front), so at a high enough fraction such boxes are rare, though not absent:
on the real-photo set two such people are lost at 0.9 (MODELS.md, "Checking each detection").

A part of a person (a patch of a patterned shirt, an arm and the chair behind it) deep inside that
person's box may score a hair above the person: the scores of the two are near a tie, and which
is ahead is chance (on the real photos, the precision the model runs in decides it). A box at
least ``PART_AREA`` times a detection's area, scoring at least ``cover_score`` and no more than
``NEAR_TIE`` below it, therefore also covers it. A real person inside a box four times theirs (a
child in front of an adult, a walker far behind another) loses out only when the two score that
close; on the renders the rule moves GPSm AP by at most 0.1 (MODELS.md, "The box head read
twice").

A second kind of repeat is a wider box around a confident person: the walker and half of the
next one, or the walker and the sign post beside him. It overlaps that person's box by more than
chance (IoU >= ``min_iou``), is at least ``WIDER_AREA`` times its area and scores lower; the
uncovered part (the neighbour's half) keeps it clear of the covered rule. `wider_boxes` finds
those. Two people side by side overlap at similar sizes, so the area ratio keeps them.

Either rule also catches real people: people half hidden behind others, or in front of a larger
person whose box holds theirs. `demote_repeated` therefore lowers the score of a repeated box (to
a fraction of it, below the model's ``default_min_score``) rather than dropping it, where the
model says so: the people a user is shown are the same, and a ranked list (AP) still reaches the
hidden people after every confident one.
"""
from __future__ import annotations

import torch
from torch import Tensor

from densepose.modeling.ops.boxes import box_area, box_iou

#: Points per box side at which coverage is measured (GRID x GRID per box).
GRID = 16
#: Least area, in units of the more confident box, of a box that `wider_boxes` drops.
WIDER_AREA = 1.5
#: Least area, in units of a detection's, of a box that covers it at a near tie (`covered_boxes`).
PART_AREA = 4.0
#: How far below a detection's score a box of PART_AREA times its area may score and cover it.
NEAR_TIE = 0.05


def repeated_boxes(boxes: Tensor, scores: Tensor, min_covered: float, min_wider_iou: float) -> Tensor:
    """(N,) bool: `covered_boxes` or `wider_boxes` (each off at 0) of (N, 4) ``boxes``, (N,) ``scores``."""
    return covered_boxes(boxes, scores, min_covered) | wider_boxes(boxes, scores, min_wider_iou)


def demote_repeated(boxes: Tensor, scores: Tensor, min_covered: float, min_wider_iou: float,
                    keep_fraction: float) -> tuple[Tensor, Tensor]:
    """The (N,) scores of (N, 4) ``boxes`` with their `repeated_boxes` settled -> (scores, kept).

    With ``keep_fraction`` > 0 a repeated row's score becomes that fraction of it and every row is
    kept; at 0 the scores stay and the repeated rows are not kept (``kept`` (N,) bool False).
    Both rules read the scores as they came in.
    """
    repeated = repeated_boxes(boxes, scores, min_covered, min_wider_iou)
    if keep_fraction <= 0:  # a setting, not data: the traced graph keeps whichever branch it has
        return scores, ~repeated
    lowered = torch.where(repeated, scores * keep_fraction, scores)
    return lowered, torch.ones_like(repeated)


def _ahead(scores: Tensor, cover_score: float) -> Tensor:
    """(N, N) bool: [i, j] when detection j scores higher than i (ties: the earlier one) and at
    least ``cover_score``."""
    index = torch.ones_like(scores, dtype=torch.long).cumsum(0)
    ahead = (scores[None, :] > scores[:, None]) | ((scores[None, :] == scores[:, None]) & (index[None, :] < index[:, None]))
    return ahead & (scores[None, :] >= cover_score)


def _around_at_near_tie(boxes: Tensor, scores: Tensor, cover_score: float) -> Tensor:
    """(N, N) bool: [i, j] when j's box is at least ``PART_AREA`` times i's in area and j scores at
    least ``cover_score`` and no more than ``NEAR_TIE`` below i."""
    area = box_area(boxes)
    return ((area[None, :] >= PART_AREA * area[:, None]) & (scores[None, :] >= scores[:, None] - NEAR_TIE)
            & (scores[None, :] >= cover_score))


def covered_boxes(boxes: Tensor, scores: Tensor, min_covered: float, cover_score: float = 0.5) -> Tensor:
    """Which detections are covered by more confident ones.

    Detection i is covered when at least ``min_covered`` of its box lies inside the union of
    the boxes of the detections that score higher than it (ties: the earlier one) and at least
    ``cover_score``, and of the boxes at least ``PART_AREA`` times its area that score at least
    ``cover_score`` and no more than ``NEAR_TIE`` below it (module docstring). Coverage is measured
    on a ``GRID`` x ``GRID`` grid of cell centres.

    Args:
        boxes: (N, 4) xyxy (any pixel frame); scores: (N,).
        min_covered: the fraction in (0, 1]; 0 or less covers nothing.

    Returns:
        (N,) bool, True for covered detections.
    """
    if min_covered <= 0:  # a setting, not data: the traced graph keeps whichever branch it has
        return torch.zeros_like(scores, dtype=torch.bool)
    # No branch on the count N: in the exported graph N comes from NMS, unknown until run time.
    boxes, scores = boxes.float(), scores.float()
    steps = (torch.arange(GRID, device=boxes.device, dtype=boxes.dtype) + 0.5) / GRID
    xs = boxes[:, 0:1] + (boxes[:, 2:3] - boxes[:, 0:1]) * steps  # (N, G)
    ys = boxes[:, 1:2] + (boxes[:, 3:4] - boxes[:, 1:2]) * steps
    x = xs[:, None, :].expand(-1, GRID, -1).reshape(-1, GRID * GRID, 1)  # (N, G*G, 1)
    y = ys[:, :, None].expand(-1, -1, GRID).reshape(-1, GRID * GRID, 1)
    inside = (x >= boxes[:, 0]) & (x <= boxes[:, 2]) & (y >= boxes[:, 1]) & (y <= boxes[:, 3])  # (N, G*G, N)
    covers = _ahead(scores, cover_score) | _around_at_near_tie(boxes, scores, cover_score)  # [i, j]: j may cover i
    fraction = (inside & covers[:, None, :]).any(2).float().mean(1)
    return fraction >= min_covered


def wider_boxes(boxes: Tensor, scores: Tensor, min_iou: float, cover_score: float = 0.5) -> Tensor:
    """Which detections are wider boxes around a more confident one.

    Detection i is dropped when a detection j that scores higher (ties: the earlier one) and at
    least ``cover_score`` overlaps it by IoU >= ``min_iou`` while i's box is at least
    ``WIDER_AREA`` times j's in area.

    Args:
        boxes: (N, 4) xyxy (any pixel frame); scores: (N,).
        min_iou: the IoU in (0, 1]; 0 or less drops nothing.

    Returns:
        (N,) bool, True for the wider boxes.
    """
    if min_iou <= 0:  # a setting, not data, as in covered_boxes
        return torch.zeros_like(scores, dtype=torch.bool)
    boxes, scores = boxes.float(), scores.float()
    area = box_area(boxes)
    wider = (box_iou(boxes, boxes) >= min_iou) & (area[:, None] >= WIDER_AREA * area[None, :])  # [i, j]
    return (wider & _ahead(scores, cover_score)).any(1)
