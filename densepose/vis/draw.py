"""Generic drawing helpers on RGB uint8 NumPy images: overlays, isolines, boxes, contact sheets."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image[..., :3]


def grayscale(image: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) -> gray RGB (H, W, 3), so coloured overlays stand out (as d2's `show` does)."""
    image = _as_rgb(image).astype(np.float32)
    gray = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.repeat(np.round(gray).astype(np.uint8)[..., None], 3, axis=2)


def overlay(image: np.ndarray, rgb: np.ndarray, alpha: float = 0.6, mask: np.ndarray | None = None) -> np.ndarray:
    """Blend ``rgb`` over ``image`` (both (H, W, 3) uint8) with weight ``alpha`` where ``mask`` is set.

    ``mask`` defaults to the non-black pixels of ``rgb``; outside it the image is unchanged.
    """
    image = _as_rgb(image)
    rgb = _as_rgb(rgb)
    if image.shape != rgb.shape:
        raise ValueError(f"overlay: image {image.shape} and rgb {rgb.shape} differ in shape")
    if mask is None:
        mask = rgb.any(axis=-1)
    mask = np.asarray(mask, dtype=bool)
    out = image.copy()
    blend = image[mask].astype(np.float32) * (1.0 - alpha) + rgb[mask].astype(np.float32) * alpha
    out[mask] = np.round(blend).astype(np.uint8)
    return out


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(radius):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def _dilate_colors(mask: np.ndarray, colors: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Grow ``mask`` by ``radius`` pixels; new pixels copy the colour (H, W, 3) of a marked neighbour."""
    mask = mask.copy()
    colors = colors.copy()
    for _ in range(radius):
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            src = np.roll(mask, (dy, dx), axis=(0, 1))
            src_col = np.roll(colors, (dy, dx), axis=(0, 1))
            # np.roll wraps around: ignore pixels that came from the opposite border.
            if dy == 1:
                src[0] = False
            elif dy == -1:
                src[-1] = False
            elif dx == 1:
                src[:, 0] = False
            else:
                src[:, -1] = False
            new = src & ~mask
            colors[new] = src_col[new]
            mask |= new
    return mask, colors


def isoline_mask(labels: np.ndarray, values: np.ndarray, levels: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Pixels where ``values`` (H, W) in [0, 1] crosses one of ``levels`` equal steps inside a part.

    Returns (mask (H, W) bool, level (H, W) int) where level is the step index above the crossing.
    Crossings between different parts are not lines (charts are independent).
    """
    labels = np.asarray(labels)
    q = np.floor(np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0 - 1e-6) * levels).astype(np.int32)
    mask = np.zeros(labels.shape, dtype=bool)
    level = np.zeros(labels.shape, dtype=np.int32)
    fg = labels > 0
    # Horizontal neighbours, then vertical: mark the pixel on the higher-level side.
    for a, b in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                 ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        same = fg[a] & fg[b] & (labels[a] == labels[b]) & (q[a] != q[b])
        hi_is_b = q[b] > q[a]
        mb = same & hi_is_b
        ma = same & ~hi_is_b
        mask[b] |= mb
        mask[a] |= ma
        level[b] = np.where(mb, q[b], level[b])
        level[a] = np.where(ma, q[a], level[a])
    return mask, level


def draw_isolines(
    image: np.ndarray,
    labels: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    levels: int = 10,
    thickness: int = 1,
    part_boundaries: bool = True,
) -> np.ndarray:
    """Draw U isolines (red -> yellow by level), V isolines (blue -> cyan) and part boundaries (white).

    ``image`` is RGB uint8 (H, W, 3); ``labels`` (H, W) 0..24 and ``u``, ``v`` (H, W) in [0, 1] are
    aligned with it (full-image maps, e.g. from `PersonResult.iuv_image`).
    """
    out = _as_rgb(image).copy()
    labels = np.asarray(labels)
    ramp = np.linspace(0.0, 255.0, levels).astype(np.uint8)
    if part_boundaries:
        edge = np.zeros(labels.shape, dtype=bool)
        edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
        edge[1:, :] |= labels[1:, :] != labels[:-1, :]
        edge &= labels > 0
        out[_dilate(edge, thickness - 1)] = (255, 255, 255)
    for values, make in ((u, lambda r: np.stack([np.full_like(r, 255), r, np.zeros_like(r)], -1)),
                         (v, lambda r: np.stack([np.zeros_like(r), r, np.full_like(r, 255)], -1))):
        mask, level = isoline_mask(labels, values, levels)
        colors = make(ramp[np.clip(level, 0, levels - 1)])
        if thickness > 1:
            mask, colors = _dilate_colors(mask, colors, thickness - 1)
        out[mask] = colors[mask]
    return out


def _font(size: int = 12):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def draw_boxes(
    image: np.ndarray,
    boxes: np.ndarray,
    scores: Sequence[float] | None = None,
    texts: Sequence[str] | None = None,
    color: tuple[int, int, int] = (0, 255, 0),
    width: int = 2,
) -> np.ndarray:
    """Draw xyxy ``boxes`` (N, 4) with optional score labels on a copy of RGB ``image``."""
    pil = Image.fromarray(_as_rgb(image).copy())
    draw = ImageDraw.Draw(pil)
    font = _font(max(10, min(pil.size) // 40))
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        draw.rectangle([x0, y0, x1, y1], outline=tuple(color), width=width)
        label = texts[k] if texts is not None else (f"{scores[k]:.2f}" if scores is not None else None)
        if label:
            tx, ty = x0 + width, max(0.0, y0 - font.size - 4) if hasattr(font, "size") else y0
            bbox = draw.textbbox((tx, ty), label, font=font)
            draw.rectangle(bbox, fill=tuple(color))
            draw.text((tx, ty), label, fill=(0, 0, 0), font=font)
    return np.asarray(pil)


def make_grid(
    images: Sequence[np.ndarray],
    ncols: int | None = None,
    pad: int = 4,
    background: int = 255,
    titles: Sequence[str] | None = None,
) -> np.ndarray:
    """Tile RGB images (any sizes) into one contact sheet with ``ncols`` columns.

    Each cell is as large as the largest image; images are placed top-left in their cell.
    Optional ``titles`` are written in a strip above each cell.
    """
    images = [_as_rgb(im) for im in images]
    if not images:
        raise ValueError("make_grid needs at least one image")
    n = len(images)
    ncols = max(1, min(ncols or int(np.ceil(np.sqrt(n))), n))
    nrows = int(np.ceil(n / ncols))
    ch = max(im.shape[0] for im in images)
    cw = max(im.shape[1] for im in images)
    title_h = 0
    font = None
    if titles:
        font = _font(14)
        title_h = 20
    sheet = np.full(
        (nrows * (ch + title_h) + (nrows + 1) * pad, ncols * cw + (ncols + 1) * pad, 3), background, np.uint8
    )
    for k, im in enumerate(images):
        r, c = divmod(k, ncols)
        y = pad + r * (ch + title_h + pad) + title_h
        x = pad + c * (cw + pad)
        sheet[y : y + im.shape[0], x : x + im.shape[1]] = im
    if titles:
        pil = Image.fromarray(sheet)
        draw = ImageDraw.Draw(pil)
        for k, title in enumerate(titles[:n]):
            r, c = divmod(k, ncols)
            draw.text((pad + c * (cw + pad) + 2, pad + r * (ch + title_h + pad) + 2), str(title), fill=(0, 0, 0), font=font)
        sheet = np.asarray(pil)
    return sheet
