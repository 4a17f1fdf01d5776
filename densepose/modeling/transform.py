"""The one home of the input geometry: resize rule, normalise + pad into a batch, map outputs back.

Training (``densepose.data.transforms`` when the dataset resizes), the model (``DensePoseRCNN``)
and the predictor all go through this module, so an image is resized the same way everywhere and
every output is mapped back to the pixels of the image that was given (the role torchvision's
``GeneralizedRCNNTransform`` plays).

Rules:
- Scale so the shorter side is ``min_size`` unless the longer side would pass ``max_size``;
  the new size is the rounded scaled size (at least 1 pixel).
- Bilinear, ``align_corners=False``, antialiased when shrinking (no aliasing on big photos).
- A box maps back by dividing by the per-axis scale ``(new / old)`` and clipping to the input.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def resize_shape(height: int, width: int, min_size: int, max_size: int) -> tuple[int, int]:
    """(h, w) after scaling so the short side is ``min_size`` unless the long side would pass ``max_size``."""
    scale = min_size / min(height, width)
    if max(height, width) * scale > max_size:
        scale = max_size / max(height, width)
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def resize_image(image: Tensor, size: tuple[int, int]) -> Tensor:
    """(3, H, W) float image -> (3, h, w); bilinear, antialiased when shrinking; unchanged when equal."""
    h0, w0 = image.shape[-2:]
    if (h0, w0) == tuple(size):
        return image
    shrink = size[0] < h0 or size[1] < w0
    return F.interpolate(image[None], size=tuple(size), mode="bilinear", align_corners=False, antialias=shrink)[0]


def resize_by(image: Tensor, factor: float) -> Tensor:
    """(3, H, W) float image -> resized by ``factor`` (each side rounded, at least 1), by `resize_image`."""
    h, w = image.shape[-2:]
    return resize_image(image, (max(1, round(h * factor)), max(1, round(w * factor))))


def scale_target(target: dict, sy: float, sx: float, size: tuple[int, int], device=None) -> dict:
    """Targets in input pixels -> pixels of the image resized by (sy, sx) to ``size`` = (h, w).

    Boxes (G, 4) and keypoints (G, K, 3) scale; instance masks (G, H, W) are resized (nearest);
    DensePose points and part masks live in box-relative 256x256 coordinates and need no change.
    """
    out = dict(target)
    boxes = torch.as_tensor(target["boxes"], dtype=torch.float32, device=device).reshape(-1, 4)
    out["boxes"] = boxes * boxes.new_tensor([sx, sy, sx, sy])
    if target.get("keypoints") is not None:
        k = torch.as_tensor(target["keypoints"], dtype=torch.float32, device=device)
        if k.dim() != 3:  # a flat list per person; (G, K, 3) stays as it is, even with G = 0
            k = k.reshape(boxes.shape[0], -1, 3)
        out["keypoints"] = k * k.new_tensor([sx, sy, 1.0])
    if target.get("masks") is not None:
        m = torch.as_tensor(target["masks"], device=device)
        if m.shape[0] and tuple(m.shape[-2:]) != tuple(size):
            m = F.interpolate(m[:, None].float(), size=tuple(size), mode="nearest")[:, 0]
        out["masks"] = m.to(torch.uint8) if m.shape[0] else m.new_zeros((0,) + tuple(size), dtype=torch.uint8)
    return out


def boxes_to_input(boxes: Tensor, scale: tuple[float, float], input_size: tuple[int, int]) -> Tensor:
    """(N, 4) xyxy boxes in resized pixels -> input pixels: divide by ``scale`` = (sy, sx), clip to (h, w)."""
    sy, sx = scale
    b = boxes / boxes.new_tensor([sx, sy, sx, sy])
    b[:, 0::2] = b[:, 0::2].clamp(0, int(input_size[1]))
    b[:, 1::2] = b[:, 1::2].clamp(0, int(input_size[0]))
    return b


@dataclass
class ImageBatch:
    """What the network sees.

    Attributes:
        tensor: (N, 3, H, W) normalised, zero-padded to a multiple of ``size_divisibility``, channels-last.
        sizes: per image (h, w) after resizing (the valid region of ``tensor``).
        scales: per image (sy, sx) = resized / input size.
        input_sizes: per image (h, w) as given.
        targets: targets in resized pixels (training), else None.
    """

    tensor: Tensor
    sizes: list[tuple[int, int]]
    scales: list[tuple[float, float]]
    input_sizes: list[tuple[int, int]]
    targets: list[dict] | None = None


class RCNNTransform(nn.Module):
    """Resize, normalise with ImageNet mean/std, pad into one batch; map outputs back to input pixels.

    ``min_size_train`` is the set of shorter sides drawn from in training, ``min_size_test`` the one
    used in eval; per call both can be overridden (``min_size``, ``max_size``) without touching the
    model's config.
    """

    def __init__(
        self,
        min_size_train: tuple[int, ...],
        min_size_test: int,
        max_size: int,
        size_divisibility: int,
        pixel_mean: tuple[float, float, float],
        pixel_std: tuple[float, float, float],
    ):
        super().__init__()
        self.min_size_train = tuple(min_size_train)
        self.min_size_test = int(min_size_test)
        self.max_size = int(max_size)
        self.size_divisibility = int(size_divisibility)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(3, 1, 1), persistent=False)

    def target_size(self, height: int, width: int, min_size: int | None = None, max_size: int | None = None) -> tuple[int, int]:
        """The resized (h, w) of an input of (height, width) in eval (or with an explicit ``min_size``)."""
        return resize_shape(height, width, min_size or self.min_size_test, max_size or self.max_size)

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """(H, W) rounded up to a multiple of ``size_divisibility``."""
        d = self.size_divisibility
        return -(-height // d) * d, -(-width // d) * d

    def forward(
        self,
        images: list[Tensor],
        targets: list[dict] | None = None,
        min_size: int | None = None,
        max_size: int | None = None,
    ) -> ImageBatch:
        """List of (3, H, W) float RGB 0..255 tensors (and targets in input pixels) -> `ImageBatch`."""
        dev = self.pixel_mean.device
        resized, sizes, scales, out_t = [], [], [], []
        for i, img in enumerate(images):
            if img.dim() != 3 or img.shape[0] != 3:
                raise ValueError(f"image {i}: expected a (3, H, W) tensor, got shape {tuple(img.shape)}")
            h, w = img.shape[-2:]
            short = min_size or (random.choice(self.min_size_train) if self.training else self.min_size_test)
            nh, nw = resize_shape(h, w, short, max_size or self.max_size)
            x = resize_image(img.to(dev, torch.float32), (nh, nw))
            resized.append((x - self.pixel_mean) / self.pixel_std)
            sizes.append((nh, nw))
            scales.append((nh / h, nw / w))
            if targets is not None:
                out_t.append(scale_target(targets[i], nh / h, nw / w, (nh, nw), dev))
        H, W = self.padded_size(max(s[0] for s in sizes), max(s[1] for s in sizes))
        batch = resized[0].new_zeros((len(images), 3, H, W))
        for i, x in enumerate(resized):
            batch[i, :, : x.shape[1], : x.shape[2]] = x
        batch = batch.contiguous(memory_format=torch.channels_last)
        input_sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
        return ImageBatch(batch, sizes, scales, input_sizes, out_t if targets is not None else None)

    @staticmethod
    def to_input_pixels(results: list[dict[str, Tensor]], batch: ImageBatch) -> list[dict[str, Tensor]]:
        """Per-image outputs in resized pixels -> input pixels (``boxes``, ``dp_boxes`` clipped, ``keypoints`` x/y), float32."""
        for r, scale, size in zip(results, batch.scales, batch.input_sizes):
            r["boxes"] = boxes_to_input(r["boxes"].float(), scale, size)
            if "dp_boxes" in r:
                r["dp_boxes"] = boxes_to_input(r["dp_boxes"].float(), scale, size)
            if "keypoints" in r:
                k = r["keypoints"].float()
                r["keypoints"] = k / k.new_tensor([scale[1], scale[0], 1.0])
            for key, val in r.items():  # float32 outputs even under autocast
                r[key] = val.float()
        return results

    def same_padding_groups(self, images: list[Tensor], min_size: int | None = None, max_size: int | None = None) -> list[list[int]]:
        """Indices of ``images`` grouped by padded size, in first-seen order.

        Images in one group get exactly the padding they would get alone, so running a group as a
        batch gives each image its one-at-a-time answer (GroupNorm statistics, RPN top-k and
        feature borders all see the same tensor).
        """
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            size = self.target_size(int(img.shape[-2]), int(img.shape[-1]), min_size, max_size)
            groups.setdefault(self.padded_size(*size), []).append(i)
        return list(groups.values())

    def run_in_padding_groups(
        self,
        images: list[Tensor],
        infer: Callable[[ImageBatch], list[dict[str, Tensor]]],
        min_size: int | None = None,
        max_size: int | None = None,
    ) -> list[dict[str, Tensor]]:
        """Eval: ``infer`` (an `ImageBatch` -> per-image outputs) once per `same_padding_groups` group;
        the outputs come back in the order of ``images``."""
        results: list[dict[str, Tensor] | None] = [None] * len(images)
        for group in self.same_padding_groups(images, min_size, max_size):
            batch = self([images[i] for i in group], None, min_size, max_size)
            for i, r in zip(group, infer(batch)):
                results[i] = r
        return results
