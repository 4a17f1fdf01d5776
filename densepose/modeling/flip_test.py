"""Flip test: the DensePose head also reads the mirrored image, and the two answers are averaged.

A person seen in a mirror is the same person with left and right exchanged: the mirrored image's
right hand is the person's left hand. So the head's outputs on the mirrored image, for the
mirrored box, carry over to the original once their columns are reversed, each chart channel is
taken from its mirror chart (``CHART_FLIP``: the left hand's channel from the right hand's), and
each (U, V) is carried into the mirror chart by the surface's symmetry tables (`flip_uv` of
`densepose.surface.BodySurface`, the role of the official ``UV_symmetry_transforms.mat``). The
two answers are averaged, logits and U, V alike, as detectron2's DensePose test-time augmentation
averages its views. Unlike it, the boxes and scores stay those of the original image: merging the
mirror's detections found more people but more false ones too (MODELS.md, "Flip test").
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from densepose.errors import UserError
from densepose.surface.parts import CHART_FLIP, MASK_PART_FLIP

#: The per-box outputs the flip test averages (those of `DensePosePredictor`).
FLIPPED_KEYS = ("coarse_segm", "fine_segm", "u", "v")


def mirror_images(images: Tensor, sizes: Sequence[tuple[int, int]]) -> Tensor:
    """(B, C, H, W) padded batch -> each image mirrored left-right inside its own (h, w), padding kept in place."""
    out = images.clone()
    for i, (h, w) in enumerate(sizes):
        out[i, :, :h, :w] = images[i, :, :h, :w].flip(-1)
    return out


def mirror_boxes(boxes: Tensor, width: int) -> Tensor:
    """(K, 4) xyxy boxes of an image ``width`` wide -> the same boxes in its mirror image."""
    return torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)


def unmirror_outputs(out: dict[str, Tensor], flip_uv: Tensor) -> dict[str, Tensor]:
    """Per-box head outputs on mirrored boxes -> the outputs they say for the original boxes.

    Args:
        out: ``coarse_segm`` (K, 2 or 15, S, S), ``fine_segm``, ``u``, ``v`` (K, 25, S, S) of the
            mirrored boxes (15 coarse channels are the mask parts, each taken from its mirror part).
        flip_uv: (24, T, T, 2) symmetry tables; ``flip_uv[c - 1, row, col]`` is the (U', V') in
            chart ``CHART_FLIP[c]`` of the mirror image of the point (U = col / (T - 1),
            V = row / (T - 1)) of chart c.

    Returns:
        The same keys and shapes; U, V of the charts read from the tables (nearest cell, as the
        official tables are read), channel 0 (background) as it was.
    """
    partner = torch.as_tensor(CHART_FLIP, device=out["fine_segm"].device)
    coarse = out["coarse_segm"].flip(-1)
    if coarse.shape[1] == len(MASK_PART_FLIP):  # detectron2's legacy heads: 14 parts + background, not 2
        coarse = coarse[:, torch.as_tensor(MASK_PART_FLIP, device=coarse.device)]
    fine = out["fine_segm"].flip(-1)[:, partner]
    u, v = out["u"].flip(-1)[:, partner], out["v"].flip(-1)[:, partner]  # chart c holds its partner's U, V
    last = flip_uv.shape[1] - 1
    col = (u[:, 1:].float().clamp(0, 1) * last).long()
    row = (v[:, 1:].float().clamp(0, 1) * last).long()
    source = (partner[1:] - 1)[None, :, None, None].expand_as(col)  # the partner's table carries it to chart c
    carried = flip_uv[source, row, col].float()  # (K, 24, S, S, 2)
    u = torch.cat([u[:, :1], carried[..., 0].to(u.dtype)], dim=1)
    v = torch.cat([v[:, :1], carried[..., 1].to(v.dtype)], dim=1)
    return {"coarse_segm": coarse, "fine_segm": fine, "u": u, "v": v}


def average_outputs(a: dict[str, Tensor], b: dict[str, Tensor]) -> dict[str, Tensor]:
    """The mean of two answers for the same boxes: logits and U, V alike (as detectron2 averages them)."""
    return {**a, **{key: (a[key].float() + b[key].float()).div(2).to(a[key].dtype) for key in FLIPPED_KEYS}}


def flip_tables(chart: str, symmetry_file: str | Path | None = None) -> Tensor:
    """(24, T, T, 2) float32 symmetry tables of a model's ``chart``: read from ``symmetry_file``
    (a ``UV_symmetry_transforms.mat``) when given, else built from the Anny surface (the anny
    chart's are the only ones shipped; the SMPL chart's come with detectron2's DensePose data files)."""
    if symmetry_file is not None:
        from densepose.surface.symmetry import read_symmetry_file

        return torch.from_numpy(read_symmetry_file(symmetry_file))
    if chart != "anny":
        raise UserError(f"the flip test needs the symmetry tables of the {chart!r} chart, which are not shipped: "
                        "give detectron2's UV_symmetry_transforms.mat (--flip-tables PATH), or write one from the "
                        "SMPL model with `densepose surface symmetry --surface smpl --smpl-model PATH`")
    from densepose.surface import load_surface

    return torch.from_numpy(np.ascontiguousarray(load_surface(chart).symmetry_tables(), dtype=np.float32))
