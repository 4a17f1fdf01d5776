"""Small people read at a larger size: the DensePose head's features of the people shorter than
``max_height`` come from the image resized to a larger shorter side.

The DensePose head pools each person from the stride-4 decoder map. A person 100 pixels tall at the
test size is 25 cells of it, so the thin parts (hands, forearms, the far leg) are a cell or two
wide; the same person in the image resized to 1.5 times the size gets 1.5 times the cells, from
pixels the trunk sees at 1.5 times the resolution. Large people read that way lose instead (they
become taller than the people the head was trained on), so only the people shorter than
``max_height`` at the largest test size are read from the larger size (MODELS.md, "Small people
read at a larger size"). Boxes, scores and the per-box checks stay those of the test sizes; only
the DensePose maps of the small people change. It costs one more trunk pass, at the larger size,
for the images that have small people.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from densepose.errors import UserError
from densepose.modeling.flip_test import mirror_images
from densepose.modeling.transform import ImageBatch

#: ``pool(feats, boxes)``: (sum K_i, C, S, S) RoI features of per-image boxes (K_i, 4) from FPN levels.
Pool = Callable[[list[Tensor], list[Tensor]], Tensor]


@dataclass
class Zoom:
    """The images of a batch at the larger size, and which of its people the head reads there.

    ``batch``: the images at the larger size; ``factors``: per image (4,) from the base batch's
    resized pixels to these (x, y, x, y); ``max_height``: people shorter than this, in the base
    batch's pixels, are read at the larger size; ``backbone``: the trunk + FPN, run on ``batch``
    the first time a small person needs it.
    """

    batch: ImageBatch
    factors: list[Tensor]
    max_height: float
    backbone: Callable[[Tensor], list[Tensor]]
    _feats: list[Tensor] | None = field(default=None, repr=False)

    def feats(self) -> list[Tensor]:
        if self._feats is None:
            self._feats = self.backbone(self.batch.tensor)
        return self._feats

    def mirrored(self) -> Zoom:
        """The same at the mirror images (the flip test): a base box mirrored in the base image and
        scaled by ``factors`` is the zoomed box mirrored in the zoomed image."""
        tensor = mirror_images(self.batch.tensor, self.batch.sizes)
        return Zoom(ImageBatch(tensor, self.batch.sizes, self.batch.scales, self.batch.input_sizes),
                    self.factors, self.max_height, self.backbone)


def _zoomed_cap(transform, max_size: int | None, base_size: int, size: int) -> int:
    """The longer side's cap at the zoom size: the base cap (``max_size`` None: the transform's) in proportion."""
    return int(round((transform.max_size if max_size is None else max_size) * size / base_size))


def zoom_padding_groups(transform, images: list[Tensor], group: list[int], base_size: int, size: int,
                        max_size: int | None) -> list[list[int]]:
    """A padding group of the base size (indices into ``images``) split so that its images also share
    their padding at the zoom size: a batch then gives each image its one-at-a-time answer there too
    (a model whose norms see the padding, GroupNorm, would otherwise read other maps)."""
    cap = _zoomed_cap(transform, max_size, base_size, size)
    subgroups = transform.same_padding_groups([images[i] for i in group], size, cap)
    return [[group[j] for j in sub] for sub in subgroups]


def zoom_batch(transform, backbone, images: list[Tensor], base: ImageBatch, base_size: int, size: int,
               max_size: int | None, max_height: float) -> Zoom:
    """A `Zoom` of ``images`` (the inputs of the ``base`` batch, tested at shorter side ``base_size``)
    at shorter side ``size``; the longer side's cap grows in proportion (``max_size`` None: the
    transform's). A size no larger than ``base_size`` is a one-line error: it would read nobody closer."""
    if size <= base_size:
        raise UserError(f"zoom: the size small people are read at ({size}) must be larger than the largest "
                        f"test size ({base_size})")
    batch = transform(images, None, size, _zoomed_cap(transform, max_size, base_size, size))
    factors = [torch.tensor([zx / bx, zy / by, zx / bx, zy / by], device=base.tensor.device)
               for (zy, zx), (by, bx) in zip(batch.scales, base.scales)]
    return Zoom(batch, factors, max_height, backbone)


def zoomed_roi_features(pool: Pool, feats: list[Tensor], boxes: list[Tensor], heights: list[Tensor],
                        zoom: Zoom | None) -> Tensor:
    """(sum K_i, C, S, S) RoI features of the per-image ``boxes`` (K_i, 4) in the base batch's pixels:
    from ``feats``, except the people whose ``heights`` (K_i,) are under ``zoom.max_height``, pooled
    from the zoomed batch's features at their boxes scaled by its factors."""
    if zoom is None:
        return pool(feats, boxes)
    small = [h < zoom.max_height for h in heights]
    is_small = torch.cat(small)
    if not bool(is_small.any()):
        return pool(feats, boxes)
    near = pool(zoom.feats(), [b[s] * f for b, s, f in zip(boxes, small, zoom.factors)])
    if bool(is_small.all()):
        return near
    rest = pool(feats, [b[~s] for b, s in zip(boxes, small)])
    out = rest.new_empty((is_small.shape[0], *rest.shape[1:]))
    out[is_small] = near.to(out.dtype)
    out[~is_small] = rest
    return out
