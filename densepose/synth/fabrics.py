"""Procedural fabrics: colours from clothing palettes and patterns evaluated at rest-pose points.

A pattern is a function of a point's position on the rest template (metres), so stripes, checks
and prints stay on the cloth as the body moves. ``fabric_albedo`` gives the colour,
``fabric_bump`` a normal perturbation (knit ribs, denim twill, folds) that shading adds to the
geometric normal.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PATTERNS = ("solid", "stripes", "checks", "denim", "knit", "dots", "print", "heather")

# Clothing colours, sRGB: neutrals first (most garments), then denim, then brights.
NEUTRALS = np.array([[20, 20, 22], [40, 40, 45], [90, 90, 95], [150, 150, 150], [215, 215, 210], [245, 245, 240],
                     [30, 35, 60], [60, 50, 40], [110, 85, 60], [190, 170, 130], [120, 115, 80], [70, 80, 55],
                     [150, 40, 45], [100, 30, 40]], dtype=np.float32)
DENIM = np.array([[35, 50, 85], [55, 75, 120], [80, 105, 150], [120, 145, 180], [30, 30, 35]], dtype=np.float32)
BRIGHTS = np.array([[200, 30, 40], [230, 110, 20], [240, 200, 40], [40, 140, 70], [30, 90, 180], [120, 60, 160],
                    [230, 120, 160], [0, 150, 150], [250, 240, 220], [180, 210, 230]], dtype=np.float32)

# Pattern probabilities per garment kind (order of PATTERNS).
_P_TOP = [0.40, 0.14, 0.09, 0.02, 0.08, 0.05, 0.14, 0.08]
_P_BOTTOM = [0.38, 0.02, 0.04, 0.40, 0.02, 0.01, 0.03, 0.10]
_P_OTHER = [0.55, 0.08, 0.06, 0.05, 0.08, 0.04, 0.06, 0.08]


@dataclass
class Fabric:
    pattern: str
    colours: np.ndarray     # (3, 3) sRGB 0..1: base, second, third
    period: float           # metres
    angle: float            # pattern direction (radians, in the x-z plane)
    waves: np.ndarray       # (4, 4) random plane waves: direction (3) + phase, for noise
    bump: float             # strength of the normal perturbation
    specular: float         # highlight strength (0.02 matte cotton .. 0.4 leather, satin)
    shininess: float
    logo: np.ndarray | None = None   # (h, w, 4) uint8 RGBA print on the chest, or None
    logo_box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # x0, z0, width, height (rest)


def _pick(rng: np.random.Generator, palette: np.ndarray) -> np.ndarray:
    c = palette[int(rng.integers(len(palette)))] * rng.uniform(0.85, 1.12) + rng.normal(0, 6, 3)
    return np.clip(c, 0, 255) / 255.0


def clothing_colour(rng: np.random.Generator, kind: str = "top") -> np.ndarray:
    """A garment colour (3,) sRGB 0..1: 60 % neutrals, denim for some bottoms, else brights."""
    u = rng.random()
    if kind == "bottom" and u < 0.35:
        return _pick(rng, DENIM)
    if u < 0.6:
        return _pick(rng, NEUTRALS)
    return _pick(rng, BRIGHTS)


def sample_fabric(rng: np.random.Generator, kind: str = "top") -> Fabric:
    """A fabric for a garment ``kind`` ("top", "bottom", "dress", "coat", "shoes", "hat", ...)."""
    p = _P_TOP if kind in ("top", "dress") else _P_BOTTOM if kind == "bottom" else _P_OTHER
    pattern = PATTERNS[int(rng.choice(len(PATTERNS), p=p))]
    colours = np.stack([clothing_colour(rng, kind), clothing_colour(rng, kind), clothing_colour(rng, "top")])
    if pattern == "denim":
        colours[0] = _pick(rng, DENIM)
        colours[1] = np.clip(colours[0] * 1.5 + 0.1, 0, 1)
    elif pattern in ("heather", "knit"):
        colours[1] = np.clip(colours[0] * rng.uniform(0.7, 1.3), 0, 1)
    waves = rng.normal(0, 1, (4, 4))
    waves[:, 3] = rng.uniform(0, 2 * np.pi, 4)
    shoes = kind == "shoes"
    fabric = Fabric(
        pattern=pattern, colours=colours.astype(np.float32),
        period=float(rng.uniform(0.015, 0.1) if pattern in ("stripes", "checks", "dots") else rng.uniform(0.05, 0.2)),
        angle=float(rng.choice([0.0, np.pi / 2, rng.uniform(0, np.pi)], p=[0.6, 0.3, 0.1])),
        waves=waves.astype(np.float32),
        bump=float(rng.uniform(0.15, 0.3) if pattern == "knit" else rng.uniform(0.04, 0.14)),
        specular=float(rng.uniform(0.15, 0.5) if shoes or rng.random() < 0.08 else rng.uniform(0.0, 0.06)),
        shininess=float(rng.uniform(8, 40)),
    )
    if kind in ("top", "dress") and rng.random() < 0.25:
        _add_logo(rng, fabric)
    return fabric


def _add_logo(rng: np.random.Generator, fabric: Fabric) -> None:
    """A text or shape print on the chest (rest coordinates: chest front at z 0.25..0.4)."""
    from PIL import Image, ImageDraw

    from densepose.synth.textures import WORDS, font

    img = Image.new("RGBA", (128, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    ink = tuple(int(c * 255) for c in fabric.colours[2]) + (255,)
    if rng.random() < 0.7:
        word = WORDS[int(rng.integers(len(WORDS)))]
        f = font(int(min(56, 200 / max(1, len(word)))))
        tw = draw.textlength(word, font=f)
        draw.text(((128 - tw) / 2, 4), word, fill=ink, font=f)
    else:
        draw.ellipse([34, 2, 94, 62], fill=ink)
    w = float(rng.uniform(0.12, 0.24))
    fabric.logo = np.asarray(img)
    fabric.logo_box = (-w / 2 + float(rng.normal(0, 0.02)), float(rng.uniform(0.22, 0.32)), w, w / 2)


def _waves(p: np.ndarray, waves: np.ndarray, scale: float) -> np.ndarray:
    """Smooth noise (N,) in about -1..1 at points (N, 3): a sum of 4 random plane waves."""
    out = np.zeros(len(p), np.float32)
    for w in waves:
        out += np.sin((p @ w[:3]) * np.float32(scale) + w[3])
    return out * 0.5


def fabric_albedo(fabric: Fabric, rest: np.ndarray) -> np.ndarray:
    """sRGB albedo (N, 3) float32 0..1 at rest-pose points (N, 3)."""
    p = np.asarray(rest, dtype=np.float32)
    c0, c1, c2 = fabric.colours
    kind = fabric.pattern
    ca, sa = np.float32(np.cos(fabric.angle)), np.float32(np.sin(fabric.angle))
    a = (p[:, 0] * ca + p[:, 2] * sa) / fabric.period      # along the pattern direction
    b = (-p[:, 0] * sa + p[:, 2] * ca + p[:, 1] * 0.5) / fabric.period
    if kind == "solid":
        t = np.zeros(len(p), np.float32)
        out = np.broadcast_to(c0, (len(p), 3)).copy()
    elif kind == "stripes":
        t = ((a % 1.0) < 0.45).astype(np.float32)
        out = c0 * (1 - t[:, None]) + c1 * t[:, None]
    elif kind == "checks":  # plaid: two stripe sets crossing, their overlap darker
        s1 = ((a % 1.0) < 0.4).astype(np.float32)
        s2 = ((b % 1.0) < 0.4).astype(np.float32)
        out = c0 * (1 - 0.5 * (s1 + s2))[:, None] + c1 * (0.5 * (s1 + s2))[:, None]
        out = out * (1 - 0.25 * s1 * s2)[:, None]
    elif kind == "dots":
        d = (a % 1.0 - 0.5) ** 2 + (b % 1.0 - 0.5) ** 2
        t = (d < 0.06).astype(np.float32)
        out = c0 * (1 - t[:, None]) + c1 * t[:, None]
    elif kind == "print":  # blobs of two colours (floral / camouflage-like)
        n1 = _waves(p, fabric.waves, 40.0 / (fabric.period * 10))
        n2 = _waves(p[:, [2, 0, 1]], fabric.waves, 55.0 / (fabric.period * 10))
        out = np.where((n1 > 0.5)[:, None], c1, np.where((n2 > 0.6)[:, None], c2, c0))
    else:  # denim, knit, heather: fine mottling in the base colour
        fine = _waves(p, fabric.waves, 900.0) * 0.5 + _waves(p[:, [1, 2, 0]], fabric.waves, 2100.0) * 0.5
        if kind == "denim":  # twill diagonal + worn lighter areas
            twill = np.sin((p[:, 0] + p[:, 2] + p[:, 1]) * np.float32(2 * np.pi / 0.004))
            fade = np.clip(_waves(p, fabric.waves, 12.0), 0, 1) * 0.35
            t = np.clip(0.15 * twill + 0.2 * fine + fade, 0, 1)
        elif kind == "knit":
            rib = np.sin(p[:, 0] * np.float32(2 * np.pi / 0.006))
            t = np.clip(0.25 + 0.2 * rib + 0.25 * fine, 0, 1)
        else:
            t = np.clip(0.5 + 0.5 * fine, 0, 1)
        out = c0 * (1 - t[:, None]) + c1 * t[:, None]
    if fabric.logo is not None:
        out = _apply_logo(fabric, p, out)
    return out.astype(np.float32)


def _apply_logo(fabric: Fabric, p: np.ndarray, out: np.ndarray) -> np.ndarray:
    x0, z0, w, h = fabric.logo_box
    u = (p[:, 0] - x0) / w
    v = 1.0 - (p[:, 2] - z0) / h
    sel = np.flatnonzero((u >= 0) & (u < 1) & (v >= 0) & (v < 1) & (p[:, 1] < 0))
    if len(sel):
        lh, lw = fabric.logo.shape[:2]
        px = fabric.logo[(v[sel] * lh).astype(int).clip(0, lh - 1), (u[sel] * lw).astype(int).clip(0, lw - 1)]
        alpha = px[:, 3:4].astype(np.float32) / 255
        out[sel] = out[sel] * (1 - alpha) + px[:, :3].astype(np.float32) / 255 * alpha
    return out


def fabric_bump(fabric: Fabric, rest: np.ndarray) -> np.ndarray:
    """Normal perturbation (N, 3) float32 at rest-pose points: folds everywhere, plus ribs for knits."""
    p = np.asarray(rest, dtype=np.float32)
    w = fabric.waves
    # One random plane wave per component: soft folds (a few cm across) that tilt the normal.
    out = np.stack([np.sin(p @ (w[k, :3] * np.float32(25.0)) + w[k, 3]) for k in range(3)], axis=1)
    out *= np.float32(fabric.bump)
    if fabric.pattern == "knit":
        out[:, 0] += np.cos(p[:, 0] * np.float32(2 * np.pi / 0.006)) * np.float32(fabric.bump)
    return out
