"""Whether a detection is one whole person: a second look at the box's crop.

The detector scores a box from pooled features of its region. Its false people on photos are
mostly boxes that hold a person but are not one: a fragment beside a found person (a helmet, a
sleeve), a box around two walkers or a walker and a sign post, a tall box stretched over
half a street. The facing classifier's crop (`densepose.modeling.facing.person_crops`: the box
with a margin, at 192 x 96, read by ImageNet EfficientNet-Lite0 stages to C4) shows the whole box
at once, so a small head on the same C4 features can tell "a person filling the box" from these.

* `PersonCheckHead`: (N, 112, 12, 6) C4 features -> (N,) logits of "this box is one person";
  deliberately small (a 1x1 reduction to 16 channels), as it is trained on renders and read on
  photos: a larger head learns the renders.
* `PersonCheckEnsemble`: the mean probability of several such heads trained from different seeds.
* `checked_scores`: the detection score times the square root of the check's probability, the
  score the model reports; for the boxes of half-length portraits, cut by the image's bottom edge
  (`cut_by_bottom`), the probability counts at least ``PORTRAIT_FLOOR``.

`densepose.engine.person_check_train` trains the head; ``ModelConfig.person_check_on`` puts it in
a model file (it needs ``facing_on``: it reads the facing classifier's features).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from densepose.modeling.facing import C4_CHANNELS, FACING_CROP

#: A box whose bottom lies below this fraction of the image height is cut by the image's bottom edge.
BOTTOM_EDGE = 0.98
#: ... and is a portrait's when it is at least this fraction of the image tall.
PORTRAIT_HEIGHT = 0.5
#: The least probability the check gives a portrait's box.
PORTRAIT_FLOOR = 0.5


class PersonCheckHead(nn.Module):
    """forward (N, 112, 12, 6) C4 features of person crops -> (N,) logits of "one whole person"."""

    def __init__(self, channels: int = 16):
        super().__init__()
        h, w = FACING_CROP[0] // 32, FACING_CROP[1] // 32
        self.layers = nn.Sequential(
            nn.Conv2d(C4_CHANNELS, channels, 1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, stride=2), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Flatten(), nn.Dropout(0.5), nn.Linear(channels * h * w, 1),
        )

    def forward(self, c4: Tensor) -> Tensor:
        return self.layers(c4)[:, 0]


class PersonCheckEnsemble(nn.Module):
    """forward (N, 112, 12, 6) C4 features -> (N,) logits of the mean probability of ``members``
    `PersonCheckHead` s, each trained from its own seed: one small head's verdict on a box near the
    threshold moves with the seed it was trained from, and their mean moves less."""

    def __init__(self, members: int):
        super().__init__()
        self.members = nn.ModuleList(PersonCheckHead() for _ in range(members))

    def forward(self, c4: Tensor) -> Tensor:
        p = torch.stack([m(c4).float().sigmoid() for m in self.members]).mean(0).clamp(1e-6, 1 - 1e-6)
        return (p.log() - (-p).log1p()).to(c4.dtype)  # the logit, in ops every exporter knows


def person_check_head(members: int) -> nn.Module:
    """The check of a model file with ``person_check_members`` heads: one `PersonCheckHead` (the
    weights of older files) or a `PersonCheckEnsemble`."""
    return PersonCheckHead() if members == 1 else PersonCheckEnsemble(members)


def cut_by_bottom(boxes: Tensor, height: int | Tensor) -> Tensor:
    """(N, 4) xyxy boxes in an image ``height`` pixels high -> (N,) bool: the box of a half-length
    portrait, which reaches the image's bottom edge (its last ``1 - BOTTOM_EDGE``) and is at least
    ``PORTRAIT_HEIGHT`` of the image tall (a small box there is a fragment like any other)."""
    return (boxes[:, 3] >= BOTTOM_EDGE * height) & (boxes[:, 3] - boxes[:, 1] >= PORTRAIT_HEIGHT * height)


def checked_scores(scores: Tensor, p_person: Tensor, portrait: Tensor | None = None) -> Tensor:
    """(N,) detection scores, (N,) probabilities of one whole person -> (N,) ``score * sqrt(p)``.

    The check only lowers a score: a detection it is sure of keeps the detector's score (and the
    model's ``default_min_score`` its meaning), one it gives 0.25 loses half of it. Rows where
    ``portrait`` (N,) bool is True (`cut_by_bottom`) count ``p`` as at least ``PORTRAIT_FLOOR``:
    the check has learnt whole rendered people and takes a portrait cut off at the chest for a
    fragment, so there it may doubt (a score x 0.71 at most) but not veto."""
    p = p_person.float().clamp_min(0)
    if portrait is not None:
        p = torch.where(portrait, p.clamp_min(PORTRAIT_FLOOR), p)
    return (scores.float() * p.sqrt()).to(scores.dtype)
