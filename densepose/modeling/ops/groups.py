"""Ragged groups (the RoIs or GT boxes of each image) laid into a padded (groups, slots) batch."""
from __future__ import annotations

import torch
from torch import Tensor


def slots_in_groups(group: Tensor, counts: Tensor) -> Tensor:
    """(K,) position of each element within its group, elements of a group keeping their order:
    ``group`` (K,) long in [0, G), ``counts`` (G,) its bincount. ``padded[group, slot] = x`` then lays
    them into a (G, counts.max()) batch without a loop over groups."""
    order = torch.argsort(group, stable=True)
    slot = torch.empty_like(group)
    slot[order] = torch.arange(group.numel(), device=group.device) - (torch.cumsum(counts, 0) - counts)[group[order]]
    return slot
