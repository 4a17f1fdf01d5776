"""Texture transfer from a 24-tile DensePose texture atlas.

Atlas layout (the original DensePose's ``texture_atlas_200.png`` convention): an image of
6N rows x 4N columns made of N x N tiles. Chart ``I`` (1..24) lives in tile (row, col) with
``I - 1 = 6 * col + row``; a point (U, V) of that chart is read at
``x = col * N + U * (N - 1)``, ``y = row * N + (1 - V) * (N - 1)``.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from densepose.errors import UserError
from densepose.surface.parts import CHART_COLORS, NUM_CHARTS


def tile_origin(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Chart labels 1..24 -> (row0, col0) pixel offsets of their tiles in an atlas of tile size ``n``."""
    c = np.asarray(labels, dtype=np.int64) - 1
    return (c % 6) * n, (c // 6) * n


def default_atlas(n: int = 64) -> np.ndarray:
    """A procedural RGB uint8 atlas (6n, 4n, 3): each chart's colour, an 8x8 checkerboard and a
    U/V grid, so that stretching, orientation (a brighter U=1, V=1 corner) and seams are visible."""
    t = np.arange(n, dtype=np.float32) / max(n - 1, 1)
    uu, vv = np.meshgrid(t, t[::-1])  # tile pixel (y, x) shows U = x/(n-1), V = 1 - y/(n-1)
    checker = ((np.floor(uu * 8 - 1e-6) + np.floor(vv * 8 - 1e-6)) % 2).astype(np.float32)
    grid = (np.abs(uu * 4 - np.round(uu * 4)) < 0.5 / n * 4) | (np.abs(vv * 4 - np.round(vv * 4)) < 0.5 / n * 4)
    shade = 0.55 + 0.25 * checker + 0.2 * (uu + vv) / 2
    atlas = np.zeros((6 * n, 4 * n, 3), dtype=np.uint8)
    for chart in range(1, NUM_CHARTS + 1):
        r0, c0 = tile_origin(np.array(chart), n)
        tile = CHART_COLORS[chart].astype(np.float32)[None, None, :] * shade[..., None]
        tile = np.where(grid[..., None], 255.0, tile)
        atlas[int(r0) : int(r0) + n, int(c0) : int(c0) + n] = np.clip(np.round(tile), 0, 255).astype(np.uint8)
    return atlas


def load_atlas(path: str | os.PathLike) -> np.ndarray:
    """Read an atlas image (RGB or RGBA) and check its 6N x 4N shape. Returns uint8 (6N, 4N, 3|4)."""
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im.convert("RGBA" if "A" in im.getbands() else "RGB"))
    except Exception as exc:
        raise UserError(f"{path}: cannot read the texture atlas ({exc.__class__.__name__}: {exc})") from None
    h, w = arr.shape[:2]
    if h % 6 or w % 4 or h // 6 != w // 4:
        raise UserError(f"{path}: a texture atlas must be 6N x 4N pixels (rows x columns), got {h}x{w}")
    return arr


def sample_atlas(atlas: np.ndarray, labels: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Look up atlas colours for (H, W) labels and U, V (bilinear inside each tile).

    Returns (rgb (H, W, 3) uint8, alpha (H, W) float32 in [0, 1]; 0 on background and where the
    atlas is transparent).
    """
    n = atlas.shape[0] // 6
    labels = np.asarray(labels)
    fg = (labels >= 1) & (labels <= NUM_CHARTS)
    rgb = np.zeros(labels.shape + (3,), dtype=np.uint8)
    alpha = np.zeros(labels.shape, dtype=np.float32)
    if not fg.any():
        return rgb, alpha
    lab = labels[fg]
    x = np.clip(np.asarray(u, dtype=np.float32)[fg], 0, 1) * (n - 1)
    y = (1.0 - np.clip(np.asarray(v, dtype=np.float32)[fg], 0, 1)) * (n - 1)
    r0, c0 = tile_origin(lab, n)
    x0 = np.floor(x).astype(np.int64).clip(0, n - 1)
    y0 = np.floor(y).astype(np.int64).clip(0, n - 1)
    x1 = np.minimum(x0 + 1, n - 1)
    y1 = np.minimum(y0 + 1, n - 1)
    fx = (x - x0)[:, None]
    fy = (y - y0)[:, None]
    a = atlas.astype(np.float32)
    sample = (
        a[r0 + y0, c0 + x0] * (1 - fx) * (1 - fy) + a[r0 + y0, c0 + x1] * fx * (1 - fy)
        + a[r0 + y1, c0 + x0] * (1 - fx) * fy + a[r0 + y1, c0 + x1] * fx * fy
    )
    rgb[fg] = np.clip(np.round(sample[:, :3]), 0, 255).astype(np.uint8)
    alpha[fg] = sample[:, 3] / 255.0 if atlas.shape[2] == 4 else 1.0
    return rgb, alpha


def texture_transfer(
    image: np.ndarray, labels: np.ndarray, u: np.ndarray, v: np.ndarray, atlas: np.ndarray | None = None
) -> np.ndarray:
    """Paint the atlas onto the body pixels of RGB ``image`` (H, W, 3) given full-image I, U, V."""
    atlas = default_atlas() if atlas is None else atlas
    rgb, alpha = sample_atlas(atlas, labels, u, v)
    out = image.astype(np.float32) * (1 - alpha[..., None]) + rgb.astype(np.float32) * alpha[..., None]
    return np.round(out).astype(np.uint8)
