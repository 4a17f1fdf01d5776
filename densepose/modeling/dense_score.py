"""A person's score for their dense output: the detection score times the DensePose head's certainty.

The detection score says how sure the detector is that a box holds a person; it says little about
whether that person's parts and U, V came out right. A small, far or half-hidden person may be
found with confidence and still be drawn badly, and the DensePose head knows it: its maps are
unsure there. DensePose AP ranks each image's people by score, so a score that puts the people
drawn well first lifts GPS, GPSm and IOU AP without changing a single map (the idea of Mask
Scoring R-CNN, Huang et al., CVPR 2019, here without a learned head: the maps' own probabilities).

``map_certainty`` is, over the map cells the head calls body (P(body) > 0.5, the cells the labels
come from), the mean P(body) times the mean probability of the cell's most likely chart. The
dense score is ``score * map_certainty``. Box AP keeps the detection score (`densepose predict`
writes both; MODELS.md, "Ranking people by their maps").
"""
from __future__ import annotations

import torch
from torch import Tensor


def map_certainty(coarse_segm: Tensor, fine_segm: Tensor) -> Tensor:
    """(N, 2, S, S) body-against-background logits and (N, C + 1, S, S) chart logits (channel 0:
    background) -> (N,) float32 in [0, 1]: over the cells where P(body) > 0.5, the mean P(body)
    times the mean of the largest chart probability; 0 for a map without body."""
    coarse, fine = coarse_segm.float(), fine_segm.float()
    p_body = torch.sigmoid(coarse[:, 1] - coarse[:, 0])  # the softmax of two logits
    p_chart = torch.exp(fine[:, 1:].amax(1) - torch.logsumexp(fine, 1))  # the largest chart's softmax
    body = (p_body > 0.5).float()
    cells = body.sum((1, 2))
    mean_body = (p_body * body).sum((1, 2)) / cells.clamp(min=1)
    mean_chart = (p_chart * body).sum((1, 2)) / cells.clamp(min=1)
    return torch.where(cells > 0, mean_body * mean_chart, torch.zeros_like(cells))


def dense_scores(cfg, scores: Tensor, coarse_segm: Tensor, fine_segm: Tensor) -> Tensor | None:
    """(N,) detection scores times `map_certainty` when the model's config (``cfg``: its
    `ModelConfig`) has ``dense_score_on``, else None (a detectron2 file: the official scores)."""
    if not getattr(cfg, "dense_score_on", False):
        return None
    return scores.float().cpu() * map_certainty(coarse_segm, fine_segm).cpu()
