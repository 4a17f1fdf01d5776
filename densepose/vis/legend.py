"""Colour legends drawn into a picture: part colours, U/V ramps, isoline colours."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from densepose.surface.parts import CHART_COLORS, CHART_NAMES
from densepose.vis.colors import scalar_to_rgb
from densepose.vis.draw import _as_rgb, _font

#: Legend entries: (kind, label, RGB colour) for swatches, (kind, label, (N, 3) ramp) for ramps.
LegendEntry = tuple[str, str, np.ndarray]


def part_entries(labels: np.ndarray | None) -> list[LegendEntry]:
    """One swatch per chart present in ``labels`` (H, W) 0..24 (all 24 when None), in chart order."""
    present = np.arange(len(CHART_NAMES)) if labels is None else np.unique(np.asarray(labels))
    return [("swatch", f"{c} {CHART_NAMES[c]}", CHART_COLORS[c]) for c in present.tolist() if c > 0]


def ramp_entry(label: str, colors: np.ndarray) -> LegendEntry:
    return ("ramp", label, np.asarray(colors, np.uint8).reshape(-1, 3))


def isoline_entries(levels: int = 10) -> list[LegendEntry]:
    """The colours `draw_isolines` uses: U red -> yellow, V blue -> cyan, part boundaries white."""
    r = np.linspace(0, 255, levels).astype(np.uint8)
    u = np.stack([np.full_like(r, 255), r, np.zeros_like(r)], -1)
    v = np.stack([np.zeros_like(r), r, np.full_like(r, 255)], -1)
    return [ramp_entry(f"U isolines 0..1 (step {1 / levels:g})", u), ramp_entry(f"V isolines 0..1 (step {1 / levels:g})", v),
            ("swatch", "part boundary", np.array([255, 255, 255], np.uint8))]


def scalar_entry(name: str) -> LegendEntry:
    return ramp_entry(f"{name} 0 .. 1", scalar_to_rgb(np.linspace(0, 1, 32)))


def draw_legend(image: np.ndarray, entries: Sequence[LegendEntry]) -> np.ndarray:
    """Return ``image`` with a legend panel appended on its right (same height, rows wrap into columns).

    Swatches are a filled square and a label; ramps a horizontal colour bar and a label.
    """
    image = _as_rgb(image)
    if not entries:
        return image
    h = image.shape[0]
    size = int(np.clip(h // 45, 10, 18))
    font = _font(size)
    row_h = size + 6
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_w = max(int(probe.textlength(label, font=font)) for _, label, _ in entries)
    swatch_w = 3 * size
    col_w = swatch_w + 8 + text_w + 12
    rows_per_col = max(1, (h - 12) // row_h)
    ncols = -(-len(entries) // rows_per_col)
    panel = Image.new("RGB", (ncols * col_w + 8, h), (255, 255, 255))
    draw = ImageDraw.Draw(panel)
    for k, (kind, label, color) in enumerate(entries):
        c, r = divmod(k, rows_per_col)
        x, y = 8 + c * col_w, 6 + r * row_h
        if kind == "swatch":
            draw.rectangle([x, y, x + size, y + size], fill=tuple(int(v) for v in color), outline=(0, 0, 0))
        else:
            n = len(color)
            for i, rgb in enumerate(color):
                x0 = x + i * swatch_w // n
                x1 = x + (i + 1) * swatch_w // n
                draw.rectangle([x0, y, max(x0, x1 - 1), y + size], fill=tuple(int(v) for v in rgb))
            draw.rectangle([x, y, x + swatch_w, y + size], outline=(0, 0, 0))
        draw.text((x + swatch_w + 8, y), label, fill=(0, 0, 0), font=font)
    return np.concatenate([image, np.asarray(panel)], axis=1)
