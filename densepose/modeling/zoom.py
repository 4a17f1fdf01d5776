"""Small people read at a larger size: the DensePose head's features of the people shorter than
``max_height`` come from the image resized to a larger shorter side.

The DensePose head pools each person from the stride-4 decoder map. A person 100 pixels tall at the
test size is 25 cells of it, so the thin parts (hands, forearms, the far leg) are a cell or two
wide; the same person in the image resized to 1.5 times the size gets 1.5 times the cells, from
pixels the trunk sees at 1.5 times the resolution. Large people read that way lose instead (they
become taller than the people the head was trained on), so only the people shorter than
``max_height`` at the largest test size are read from the larger size (MODELS.md, "Small people
read at a larger size"). Boxes, scores and the per-box checks stay those of the test sizes; only
the DensePose maps of the small people change. An image without small people costs nothing more:
it is not even resized. One with small people costs one more trunk pass, at the larger size, over
the part of the image around them only (`Zoom.small_features`): a crop around the small people,
grown by ``CROP_MARGIN`` and cut on the trunk's stride, so that inside it the trunk's cells are
those of the whole image's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from densepose.errors import UserError
from densepose.modeling.flip_test import average_outputs, mirror_boxes, mirror_images, unmirror_outputs
from densepose.modeling.transform import ImageBatch

#: The margin kept around the small people, in zoomed pixels, in the crop the trunk reads at the
#: larger size: the DensePose head's features of a box then come from cells whose view of the
#: image the crop's edge barely cuts (MODELS.md, "Small people read at a larger size").
CROP_MARGIN = 64

#: Cells per chart side of the flip tables a model carries for the flip test of its small people
#: (`flip_small_people`): the nearest cells of the surface's 256, 0.4 MB in float16.
SMALL_FLIP_TABLE = 64

#: ``pool(feats, boxes)``: (sum K_i, C, S, S) RoI features of per-image boxes (K_i, 4) from FPN levels.
Pool = Callable[[list[Tensor], list[Tensor]], Tensor]


@dataclass
class Zoom:
    """The images of a batch at the larger size, and which of its people the head reads there.

    ``resize``: makes the images at the larger size (an `ImageBatch`), called the first time a
    small person needs them (`batch`); ``factors``: per image (4,) from the base batch's resized
    pixels to these (x, y, x, y); ``max_height``: people shorter than this, in the base batch's
    pixels, are read at the larger size; ``backbone``: the trunk + FPN, run on the crops of the
    images around their small people (`small_features`); ``stride``: the trunk's total stride,
    which the crops' corners are multiples of; ``mirror``: the mirror images of what ``resize``
    makes (the flip test).
    """

    resize: Callable[[], ImageBatch]
    factors: list[Tensor]
    max_height: float
    backbone: Callable[[Tensor], list[Tensor]]
    stride: int = 32
    mirror: bool = False
    _batch: ImageBatch | None = field(default=None, repr=False)

    @property
    def batch(self) -> ImageBatch:
        """The images at the larger size, resized once, when first asked for."""
        if self._batch is None:
            batch = self.resize()
            if self.mirror:
                batch = ImageBatch(mirror_images(batch.tensor, batch.sizes), batch.sizes, batch.scales, batch.input_sizes)
            self._batch = batch
        return self._batch

    def small_people(self, boxes: list[Tensor], heights: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per-image (K_i, 4) ``boxes`` in the base batch's pixels of people ``heights`` (K_i,) tall ->
        per image, which of them are read at the larger size ((K_i,) bool) and their boxes there."""
        small = [h < self.max_height for h in heights]
        return small, [b[s] * f for b, s, f in zip(boxes, small, self.factors)]

    def small_features(self, pool: Pool, boxes: list[Tensor]) -> Tensor:
        """(sum K_i, C, S, S) RoI features of per-image ``boxes`` (K_i, 4) in the larger size's
        pixels, each image's pooled from the trunk run on its crop around them (`crop_around`)."""
        rows = []
        for image, b in zip(self.batch.tensor, boxes):
            if b.shape[0] == 0:
                continue
            x0, y0, x1, y1 = crop_around(b, image.shape[-2:], CROP_MARGIN, self.stride)
            feats = self.backbone(image[None, :, y0:y1, x0:x1].contiguous(memory_format=torch.channels_last))
            rows.append(pool(feats, [b - b.new_tensor([x0, y0, x0, y0])]))
        return torch.cat(rows)

    def mirrored(self) -> Zoom:
        """The same at the mirror images (the flip test): a base box mirrored in the base image and
        scaled by ``factors`` is the zoomed box mirrored in the zoomed image. Both resize once."""
        return Zoom(lambda: self.batch, self.factors, self.max_height, self.backbone, self.stride, mirror=True)


def crop_around(boxes: Tensor, size: tuple[int, int], margin: int, stride: int) -> tuple[int, int, int, int]:
    """(K >= 1, 4) boxes in an image of (height, width) -> the (x0, y0, x1, y1) pixels of the crop
    holding them and ``margin`` pixels around, its corners on multiples of ``stride`` (the sides of a
    padded batch are), inside the image."""
    h, w = int(size[0]), int(size[1])
    lo = (boxes[:, :2].min(0).values - margin).floor().clamp_min(0)
    hi = (boxes[:, 2:].max(0).values + margin).ceil()
    x0, y0 = (int(v) // stride * stride for v in lo.tolist())
    x1, y1 = (min(-(-int(v) // stride) * stride, side) for v, side in zip(hi.tolist(), (w, h)))
    return x0, y0, max(x1, x0 + stride), max(y1, y0 + stride)


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
    cap = _zoomed_cap(transform, max_size, base_size, size)
    factors = []
    for image, (by, bx) in zip(images, base.scales):  # the scales the transform will resize by
        h, w = int(image.shape[-2]), int(image.shape[-1])
        zh, zw = transform.target_size(h, w, size, cap)
        factors.append(torch.tensor([zw / w / bx, zh / h / by, zw / w / bx, zh / h / by], device=base.tensor.device))
    return Zoom(lambda: transform(images, None, size, cap), factors, max_height, backbone, transform.size_divisibility)


def zoomed_roi_features(pool: Pool, feats: list[Tensor], boxes: list[Tensor], heights: list[Tensor],
                        zoom: Zoom | None) -> Tensor:
    """(sum K_i, C, S, S) RoI features of the per-image ``boxes`` (K_i, 4) in the base batch's pixels:
    from ``feats``, except the people whose ``heights`` (K_i,) are under ``zoom.max_height``, pooled
    from the zoomed batch's features at their boxes scaled by its factors."""
    if zoom is None:
        return pool(feats, boxes)
    small, scaled = zoom.small_people(boxes, heights)
    is_small = torch.cat(small)
    if not bool(is_small.any()):
        return pool(feats, boxes)
    near = zoom.small_features(pool, scaled)
    if bool(is_small.all()):
        return near
    rest = pool(feats, [b[~s] for b, s in zip(boxes, small)])
    out = rest.new_empty((is_small.shape[0], *rest.shape[1:]))
    out[is_small] = near.to(out.dtype)
    out[~is_small] = rest
    return out


def small_flip_tables(tables: Tensor, side: int = SMALL_FLIP_TABLE) -> Tensor:
    """(24, T, T, 2) flip tables (`densepose.modeling.flip_test.flip_tables`) -> (24, side, side, 2),
    each cell that of ``tables`` nearest to it."""
    nearest = torch.round(torch.arange(side, dtype=torch.float64) * (tables.shape[1] - 1) / (side - 1)).long()
    return tables[:, nearest][:, :, nearest].contiguous()


def flip_small_people(out: dict[str, Tensor], read: Callable[[Tensor], dict[str, Tensor]], pool: Pool,
                      boxes: list[Tensor], heights: list[Tensor], zoom: Zoom, flip_uv: Tensor) -> dict[str, Tensor]:
    """The flip test of the people `zoomed_roi_features` read at the larger size, and of no one else.

    ``out``: the DensePose outputs (sum K_i rows) of the per-image ``boxes`` (K_i, 4, in the base
    batch's pixels) of people ``heights`` (K_i,) tall; ``read``: RoI features -> DensePose outputs;
    ``flip_uv``: the chart's flip tables. Each small person is read again in the mirror image of
    the crop it was read from (one more trunk pass over that crop), carried back through the tables
    and averaged with its first answer, as the flip test does for everyone at the cost of a pass
    over the whole mirror image. The other rows are as they were."""
    small, scaled = zoom.small_people(boxes, heights)
    is_small = torch.cat(small)
    if not bool(is_small.any()):
        return out
    mirrored = zoom.mirrored()
    feats = mirrored.small_features(pool, [mirror_boxes(b, w) for b, (_, w) in zip(scaled, mirrored.batch.sizes)])
    again = unmirror_outputs(read(feats), flip_uv)
    averaged = average_outputs({key: out[key][is_small] for key in again}, again)
    result = dict(out)
    for key in again:
        result[key] = out[key].clone()
        result[key][is_small] = averaged[key].to(out[key].dtype)
    return result
