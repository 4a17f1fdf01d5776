"""Training augmentations on (image, target) pairs: multi-scale resize, chart-aware flip, colour jitter.

``image`` is a float tensor (3, H, W), RGB 0..255; ``target`` is the per-image dict of the model
contract (``boxes`` (G, 4) xyxy, optional ``keypoints`` (G, 17, 3) and ``masks`` (G, H, W), ``dp``
list of G entries each None or a dict with ``x``, ``y``, ``I``, ``U``, ``V``, ``mask``).
Functions never modify their inputs in place; they return new tensors/dicts.

Randomness comes from an explicit ``torch.Generator`` so that a sample's augmentation depends only
on the seed the sampler hands out with it (reproducible across workers and across a resume).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import torch

from densepose.data.coco import KEYPOINT_FLIP
from densepose.data.crop import crop, zoom_window
from densepose.data.rle import DP_MASK_SIZE
from densepose.errors import UserError
from densepose.modeling.transform import resize_by, resize_image, resize_shape, scale_target
from densepose.surface.parts import MASK_PART_FLIP


class FlipSurface(Protocol):
    """What the flip needs from a ``BodySurface``: its left/right symmetry on IUV."""

    def flip_iuv(self, charts: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


# ----------------------------------------------------------------------------- resize
def resize(image: torch.Tensor, target: dict, size: tuple[int, int]) -> tuple[torch.Tensor, dict]:
    """Resize to ``size`` = (h, w) by the rule of `densepose.modeling.transform`; targets follow."""
    h0, w0 = image.shape[-2:]
    if tuple(size) == (h0, w0):
        return image, target
    return resize_image(image, size), scale_target(target, size[0] / h0, size[1] / w0, size)


# ----------------------------------------------------------------------------- flip
def hflip(image: torch.Tensor, target: dict, surface: FlipSurface) -> tuple[torch.Tensor, dict]:
    """Mirror left/right, chart-aware.

    Pixel column c covers [c, c+1), so an x coordinate maps to ``W - x`` (boxes swap x1/x2).
    Keypoints swap left and right. DensePose: ``x -> 256 - x``, the 256x256 part mask is mirrored
    and its labels swapped by ``MASK_PART_FLIP``, and (I, U, V) go through ``surface.flip_iuv``.
    """
    width = image.shape[-1]
    out = dict(target)
    boxes = target["boxes"]
    out["boxes"] = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)
    if "keypoints" in target:
        kp = target["keypoints"][:, KEYPOINT_FLIP].clone()
        kp[..., 0] = width - kp[..., 0]
        out["keypoints"] = kp
    if "masks" in target:
        out["masks"] = target["masks"].flip(-1)
    out["dp"] = [None if dp is None else _flip_dp(dp, surface) for dp in target["dp"]]
    return image.flip(-1), out


_MASK_FLIP_U8 = MASK_PART_FLIP.astype(np.uint8)


def _flip_dp(dp: dict, surface: FlipSurface) -> dict:
    charts, uv = surface.flip_iuv(dp["I"].numpy(), torch.stack([dp["U"], dp["V"]], dim=1).double().numpy())
    uv = torch.from_numpy(np.asarray(uv, dtype=np.float32))
    mask = torch.from_numpy(_MASK_FLIP_U8[dp["mask"].numpy()[:, ::-1]])
    return {
        "x": DP_MASK_SIZE - dp["x"],
        "y": dp["y"].clone(),
        "I": torch.from_numpy(np.asarray(charts, dtype=np.int64)),
        "U": uv[:, 0].contiguous(),
        "V": uv[:, 1].contiguous(),
        "mask": mask,
    }


# ----------------------------------------------------------------------------- colour
# RGB -> YIQ; a hue shift is a rotation of the (I, Q) chroma plane.
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ2RGB = torch.linalg.inv(_RGB2YIQ)


def color_jitter(
    image: torch.Tensor,
    brightness: float,
    contrast: float,
    saturation: float,
    hue: float,
) -> torch.Tensor:
    """Photometric change of a (3, H, W) 0..255 image by explicit factors.

    ``brightness``, ``contrast``, ``saturation`` are multiplicative factors (1 = no change);
    ``hue`` is a rotation of the chroma plane in turns (0 = no change, 0.5 = opposite hues).
    Applied in that order; every step is affine in RGB, so the image is touched by one 3x3
    matrix and one offset (plus one mean for the contrast pivot).
    """
    luma = _RGB2YIQ[0].double()
    eye = torch.eye(3, dtype=torch.float64)
    pivot = brightness * float((image.reshape(3, -1).mean(1).double() * luma).sum())
    # x -> b x -> c (b x) + (1 - c) pivot -> saturation blend with luma -> hue rotation
    sat = saturation * eye + (1 - saturation) * torch.ones(3, 1, dtype=torch.float64) * luma[None]
    m = sat * 1.0
    if hue != 0.0:
        a = 2 * np.pi * hue
        rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, np.cos(a), -np.sin(a)], [0.0, np.sin(a), np.cos(a)]], dtype=torch.float64)
        m = _YIQ2RGB.double() @ rot @ _RGB2YIQ.double() @ sat
    offset = m @ torch.full((3,), (1 - contrast) * pivot, dtype=torch.float64)
    m = m * (contrast * brightness)
    out = torch.addmm(offset.to(image.dtype)[:, None], m.to(image.dtype), image.reshape(3, -1))
    return out.reshape(image.shape).clamp_(0, 255)


# ----------------------------------------------------------------------------- composition
@dataclass
class AugmentConfig:
    """Training-time augmentation; the defaults follow the reference recipe (640-800 / 1333, flip).

    An empty ``min_sizes`` skips the resize (for models that resize their input themselves).
    """

    min_sizes: Sequence[int] = (640, 672, 704, 736, 768, 800)
    max_size: int = 1333
    flip_prob: float = 0.5
    brightness: float = 0.0  # factor drawn from [1 - b, 1 + b]
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0  # shift drawn from [-h, h] turns
    zoom_prob: float = 0.0  # chance of a zoom-in crop around one person (`densepose.data.crop`)
    zoom_fill: tuple[float, float] = (0.6, 2.5)  # that person's height / the crop's height
    grayscale_prob: float = 0.0  # chance of a greyscale image (black-and-white photos, infrared cameras)
    low_res_prob: float = 0.0  # chance of a low-resolution copy (`low_res_copy`): a small photo enlarged
    low_res_scale: tuple[float, float] = (0.35, 0.75)  # the factor it is shrunk by, drawn from this range


def low_res_copy(image: torch.Tensor, factor: float) -> torch.Tensor:
    """(3, H, W) -> (3, H, W): shrunk by ``factor`` (antialiased) and enlarged back (bilinear), the
    detail a photo ``factor`` times as large has once the model enlarges it; targets are unchanged."""
    return resize_image(resize_by(image, factor), tuple(image.shape[-2:]))


class TrainTransform:
    """Random zoom-in crop, multi-scale resize, chart-aware flip, colour jitter, greyscale and
    low-resolution copies, driven by a per-sample seed."""

    def __init__(self, cfg: AugmentConfig, surface: FlipSurface | None = None):
        if cfg.flip_prob > 0 and surface is None:
            raise ValueError("horizontal flip needs a surface with flip_iuv (or set flip_prob to 0)")
        if len(cfg.low_res_scale) != 2 or not 0 < cfg.low_res_scale[0] <= cfg.low_res_scale[1] <= 1:
            raise UserError(f"data.low_res_scale must be two shrink factors 0 < low <= high <= 1, got {list(cfg.low_res_scale)}")
        self.cfg = cfg
        self.surface = surface

    def __call__(self, image: torch.Tensor, target: dict, seed: int) -> tuple[torch.Tensor, dict]:
        g = torch.Generator().manual_seed(seed)
        cfg = self.cfg

        def uniform(spread: float) -> float:
            return float(torch.empty(()).uniform_(-spread, spread, generator=g)) if spread > 0 else 0.0

        pick = int(torch.randint(max(len(cfg.min_sizes), 1), (), generator=g))
        flip = float(torch.rand((), generator=g)) < cfg.flip_prob
        b, c, s, h = (uniform(v) for v in (cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue))
        # Drawn after the others, so that zoom_prob = 0 leaves every earlier draw as it was.
        if cfg.zoom_prob > 0 and float(torch.rand((), generator=g)) < cfg.zoom_prob:
            window = zoom_window(g, tuple(image.shape[-2:]), target["boxes"], cfg.zoom_fill)
            if window is not None:
                image, target = crop(image, target, window)
        # Drawn last, so that grayscale_prob = 0 leaves every other draw as it was.
        if cfg.grayscale_prob > 0 and float(torch.rand((), generator=g)) < cfg.grayscale_prob:
            s = -1.0  # saturation factor 0: the luma of the jittered image in all three channels
        # Drawn after that, so that low_res_prob = 0 leaves every other draw as it was.
        if cfg.low_res_prob > 0 and float(torch.rand((), generator=g)) < cfg.low_res_prob:
            lo, hi = cfg.low_res_scale
            image = low_res_copy(image, lo + (hi - lo) * float(torch.rand((), generator=g)))
        if cfg.min_sizes:  # empty: the model resizes (DensePoseRCNN does, on the device)
            image, target = resize(image, target, resize_shape(*image.shape[-2:], cfg.min_sizes[pick], cfg.max_size))
        if flip:
            image, target = hflip(image, target, self.surface)
        if b or c or s or h:
            image = color_jitter(image, 1 + b, 1 + c, 1 + s, h)
        return image, target


class TestTransform:
    """Deterministic resize to one scale (the reference tests at 800 / 1333)."""

    def __init__(self, min_size: int = 800, max_size: int = 1333):
        self.min_size, self.max_size = min_size, max_size

    def __call__(self, image: torch.Tensor, target: dict, seed: int = 0) -> tuple[torch.Tensor, dict]:
        return resize(image, target, resize_shape(*image.shape[-2:], self.min_size, self.max_size))
