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


def pad_groups(values: list[Tensor], fill: float = 0.0) -> tuple[Tensor, Tensor]:
    """Per group a (n_i, *rest) tensor -> ``(padded (G, max n_i, *rest), valid (G, max n_i) bool)``,
    each group's elements first in its row, in order, the padding at ``fill``. The sizes are read
    from the shapes (no host sync); the device sees a fixed number of calls whatever the number of
    groups."""
    flat = torch.cat(values)
    counts = [int(v.shape[0]) for v in values]
    padded = flat.new_full((len(values), max(counts, default=0), *flat.shape[1:]), fill)
    valid = torch.zeros(padded.shape[:2], dtype=torch.bool, device=flat.device)
    count_t = torch.tensor(counts, device=flat.device)
    group = torch.repeat_interleave(torch.arange(len(values), device=flat.device), count_t)
    slot = slots_in_groups(group, count_t)
    padded[group, slot] = flat
    valid[group, slot] = True
    return padded, valid
