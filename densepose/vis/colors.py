"""Colour maps for DensePose maps: part labels and (U, V) as RGB uint8 pictures."""
from __future__ import annotations

import numpy as np

from densepose.surface.parts import CHART_COLORS


def colorize_parts(labels: np.ndarray) -> np.ndarray:
    """Part labels (H, W) in 0..24 -> RGB uint8 (H, W, 3) with `parts.CHART_COLORS` (0 is black)."""
    labels = np.asarray(labels)
    return CHART_COLORS[np.clip(labels, 0, len(CHART_COLORS) - 1).astype(np.intp)]


def uv_to_rgb(u: np.ndarray, v: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """(H, W) U, V in [0, 1] -> RGB uint8 (H, W, 3) with R = U, G = V, B = 1 - (U + V) / 2.

    The blue channel keeps (0, 0) distinguishable from the background, which is black where
    ``labels`` is given and 0.
    """
    u = np.clip(np.asarray(u, dtype=np.float32), 0.0, 1.0)
    v = np.clip(np.asarray(v, dtype=np.float32), 0.0, 1.0)
    rgb = np.stack([u, v, 1.0 - 0.5 * (u + v)], axis=-1)
    out = np.round(rgb * 255.0).astype(np.uint8)
    if labels is not None:
        out[np.asarray(labels) == 0] = 0
    return out


def scalar_to_rgb(x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(H, W) values in [0, 1] -> RGB uint8 with a perceptually ordered ramp (dark blue -> yellow)."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    # A 5-stop approximation of viridis, interpolated linearly: no matplotlib needed.
    stops = np.array(
        [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float32
    )
    pos = x * (len(stops) - 1)
    lo = np.floor(pos).astype(np.intp).clip(0, len(stops) - 2)
    frac = (pos - lo)[..., None]
    out = np.round(stops[lo] * (1 - frac) + stops[lo + 1] * frac).astype(np.uint8)
    if mask is not None:
        out[~np.asarray(mask, dtype=bool)] = 0
    return out


def level_colors(n: int) -> np.ndarray:
    """``n`` distinct RGB uint8 colours along a hue circle (for isoline levels)."""
    hue = np.arange(n, dtype=np.float64) / max(n, 1)
    # HSV -> RGB with S = 0.85, V = 1.
    k = (np.array([5.0, 3.0, 1.0])[None, :] + hue[:, None] * 6.0) % 6.0
    rgb = 1.0 - 0.85 * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return np.round(rgb * 255).astype(np.uint8)
