"""Appearance of synthetic people and scenes: skin, hair, clothes with patterns, backgrounds, shading.

Clothing is painted per pixel from the pixel's rest-pose position on the template body (so
patterns and hem lines stick to the body as it moves): sleeves end at a fraction of the arm,
trousers/shorts/skirts at a fraction of the leg, hair covers the top and back of the head.
Colours are sRGB; shading (Lambert + ambient) happens in linear light.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

# Regions painted on a body.
SKIN, HAIR, TOP, BOTTOM, SHOES = range(5)
NUM_REGIONS = 5
# Patterns of a region.
SOLID, STRIPES, CHECKS, NOISE = range(4)

# Template landmarks: bone heads of the default Anny in the posed frame (pelvis at the origin;
# metres, person's left side). The top of the head is at z = 0.76.
_SHOULDER = np.array([0.165, -0.013, 0.427])
_WRIST = np.array([0.450, -0.174, 0.121])
_HIP_Z, _ANKLE_Z = -0.007, -0.796
_NECK_Z, _HEAD_Z = 0.513, 0.609

SKIN_TONES = np.array(
    [[255, 226, 204], [244, 204, 176], [232, 185, 150], [214, 160, 120], [189, 131, 94],
     [160, 104, 72], [128, 80, 52], [98, 62, 42], [70, 45, 32]], dtype=np.float64)
HAIR_COLOURS = np.array(
    [[20, 16, 14], [45, 30, 20], [80, 52, 30], [120, 80, 45], [165, 120, 70], [205, 170, 110],
     [140, 60, 30], [150, 150, 150], [215, 215, 210]], dtype=np.float64)


@dataclass
class PersonLook:
    """Colours and patterns of one person: per region (5,) arrays."""

    base: np.ndarray      # (5, 3) sRGB 0..255
    second: np.ndarray    # (5, 3) second colour of the pattern
    pattern: np.ndarray   # (5,) int: SOLID, STRIPES, CHECKS, NOISE
    period: np.ndarray    # (5,) metres
    phase: np.ndarray     # (5, 3) random offsets / directions
    sleeve: float         # sleeve length as a fraction of the arm (0 = sleeveless)
    leg: float            # bottom garment length as a fraction of the leg
    waist: float          # rest z of the top/bottom boundary
    hair: int             # 0 bald, 1 short, 2 long
    barefoot: bool


def _random_cloth_colour(rng: np.random.Generator) -> np.ndarray:
    kind = rng.random()
    if kind < 0.35:  # neutrals: black, grey, white, beige
        v = rng.uniform(15, 240)
        tint = rng.normal(0, 8, 3)
        return np.clip(v + tint, 0, 255)
    if kind < 0.55:  # denim / navy
        return np.clip(np.array([40, 60, 110]) * rng.uniform(0.5, 1.6) + rng.normal(0, 10, 3), 0, 255)
    hue = rng.uniform(0, 1)
    sat = rng.uniform(0.3, 0.95)
    val = rng.uniform(0.25, 0.95)
    return hsv_to_rgb(hue, sat, val) * 255


def hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


def sample_look(rng: np.random.Generator, age: float) -> PersonLook:
    """A random outfit, skin tone and hair for a person of Anny ``age`` (0 baby .. 1 old)."""
    t = rng.uniform(0, len(SKIN_TONES) - 1)
    skin = SKIN_TONES[int(t)] * (1 - t % 1) + SKIN_TONES[min(int(t) + 1, len(SKIN_TONES) - 1)] * (t % 1)
    skin = np.clip(skin * rng.uniform(0.92, 1.06, 3), 0, 255)
    hair = HAIR_COLOURS[rng.integers(0, 7)] if age < 0.85 or rng.random() < 0.4 else HAIR_COLOURS[rng.integers(7, 9)]
    base = np.stack([skin, hair, _random_cloth_colour(rng), _random_cloth_colour(rng), _random_cloth_colour(rng) * 0.6])
    second = np.stack([skin * 0.9, hair * 0.75] + [_random_cloth_colour(rng) for _ in range(3)])
    pattern = np.array([NOISE, NOISE, rng.choice(4, p=[0.45, 0.25, 0.15, 0.15]), rng.choice(4, p=[0.7, 0.1, 0.1, 0.1]), SOLID])
    second[BOTTOM] = np.where(pattern[BOTTOM] == NOISE, base[BOTTOM] * 0.8, second[BOTTOM])
    period = np.array([0.05, 0.02, rng.uniform(0.02, 0.12), rng.uniform(0.02, 0.08), 0.05])
    phase = rng.uniform(0, 2 * np.pi, (NUM_REGIONS, 3))
    sleeve = float(rng.choice([0.0, rng.uniform(0.2, 0.45), rng.uniform(0.9, 1.05)], p=[0.15, 0.4, 0.45]))
    leg = float(rng.choice([rng.uniform(0.25, 0.5), rng.uniform(0.3, 0.75), rng.uniform(0.9, 1.02)], p=[0.2, 0.15, 0.65]))
    hair_style = int(rng.choice(3, p=[0.08, 0.55, 0.37]))
    return PersonLook(base, second, pattern, period, phase, sleeve, leg, float(rng.uniform(0.0, 0.15)),
                      hair_style, bool(rng.random() < 0.07))


def vertex_features(rest_vertices: np.ndarray) -> np.ndarray:
    """(V, 5) float32 per-vertex fields on the template: rest x, y, z, arm fraction, leg fraction."""
    v = np.asarray(rest_vertices, dtype=np.float64)
    sym = np.column_stack([np.abs(v[:, 0]), v[:, 1], v[:, 2]])
    axis = _WRIST - _SHOULDER
    arm = (sym - _SHOULDER) @ axis / (axis @ axis)
    leg = (_HIP_Z - v[:, 2]) / (_HIP_Z - _ANKLE_Z)
    return np.column_stack([v, arm, leg]).astype(np.float32)


def regions(I: np.ndarray, feat: np.ndarray, look: PersonLook) -> np.ndarray:
    """Region (N,) of pixels with chart I (N,) and interpolated features (N, 5)."""
    x, y, z, arm, leg = feat.T
    r = np.full(len(I), SKIN, dtype=np.int64)
    head = I >= 23
    if look.hair:
        hairline = _HEAD_Z + np.where(y < -0.02, 0.08, 0.02)  # forehead stays free; the back is covered
        bottom = _NECK_Z + 0.02 if look.hair == 2 else _HEAD_Z - 0.01
        hairy = head & (z > hairline) | head & (y > 0.0) & (z > bottom)
        r[hairy] = HAIR
    torso = I <= 2
    neckline = z < _NECK_Z - 0.06
    r[torso & neckline] = TOP
    r[torso & (z < look.waist)] = BOTTOM
    arms = (I >= 15) & (I <= 22)
    r[arms & (arm < look.sleeve)] = TOP
    legs = (I >= 7) & (I <= 14)
    r[legs & (leg < look.leg)] = BOTTOM
    feet = (I == 5) | (I == 6)
    if not look.barefoot:
        r[feet] = SHOES
    return r


def albedo(feat: np.ndarray, region: np.ndarray, look: PersonLook) -> np.ndarray:
    """sRGB albedo (N, 3) float in 0..1 of pixels with features (N, 5) and regions (N,)."""
    out = look.base[region] / 255.0
    p = feat[:, :3]
    for r in range(NUM_REGIONS):
        kind = look.pattern[r]
        if kind == SOLID:
            continue
        sel = np.flatnonzero(region == r)
        if len(sel) == 0:
            continue
        q = p[sel] / look.period[r]
        ph = look.phase[r]
        if kind == STRIPES:
            w = (np.sin(2 * np.pi * q[:, 2] + ph[0]) > 0).astype(np.float32)
        elif kind == CHECKS:
            w = ((np.floor(q[:, 0] + ph[0]) + np.floor(q[:, 1] + ph[1]) + np.floor(q[:, 2] + ph[2])) % 2).astype(np.float32)
        else:  # smooth noise: a few random plane waves
            w = (np.sin(q @ np.array([1.3, 0.7, 2.1]) + ph[0]) + np.sin(q @ np.array([-0.9, 1.7, 1.1]) + ph[1])
                 + np.sin(q @ np.array([2.3, -1.1, 0.4]) * 1.7 + ph[2])) / 6 + 0.5
            if r == SKIN:
                w = w * 0.3
        second = look.second[r] / 255.0
        out[sel] = out[sel] * (1 - w[:, None]) + second * w[:, None]
    return out


def shade(albedo_srgb: np.ndarray, normals: np.ndarray, light_dir: np.ndarray, ambient: float,
          light_colour: np.ndarray) -> np.ndarray:
    """Lambert + ambient in linear light. normals (N, 3) unit, light_dir (3,) towards the light.

    With a pure 2.2 gamma, sRGB(albedo_linear * s) = albedo_srgb * s ** (1 / 2.2): one power per
    pixel instead of two per channel.
    """
    diffuse = np.clip(normals @ light_dir.astype(np.float32), 0.0, None)
    s = (ambient + (1.0 - ambient) * diffuse) ** np.float32(1 / 2.2)
    tint = (np.asarray(light_colour) ** (1 / 2.2)).astype(np.float32)
    return np.clip(albedo_srgb * s[:, None] * tint, 0, 1)


# --------------------------------------------------------------------------- backgrounds
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@functools.lru_cache(maxsize=64)
def _load_photo(path: str) -> Image.Image:
    img = Image.open(path).convert("RGB")
    img.thumbnail((1024, 1024))
    return img


def list_backgrounds(folder: str | Path | None) -> list[str]:
    """Sorted photo paths in ``folder`` (empty when None or missing)."""
    if folder is None or not Path(folder).is_dir():
        return []
    return sorted(str(p) for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _colour_jitter(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    """Brightness/colour change through a per-channel lookup table (fast on uint8)."""
    gain = rng.uniform(0.7, 1.2) * rng.uniform(0.9, 1.1, 3)
    ramp = np.arange(256, dtype=np.float64)
    lut = np.concatenate([np.clip(ramp * g, 0, 255) for g in gain]).astype(np.uint8)
    return img.point(lut.tolist())


def photo_background(rng: np.random.Generator, path: str, height: int, width: int) -> np.ndarray:
    """Random crop of a photo, resized to (H, W, 3) uint8, maybe mirrored and recoloured."""
    img = _load_photo(path)
    w, h = img.size
    scale = rng.uniform(0.4, 1.0)
    ch = max(8, int(min(h, w * height / width) * scale))
    cw = max(8, min(w, int(ch * width / height)))
    y0 = int(rng.integers(0, h - ch + 1))
    x0 = int(rng.integers(0, w - cw + 1))
    out = img.resize((width, height), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
    if rng.random() < 0.5:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    return np.array(_colour_jitter(rng, out))


def procedural_background(rng: np.random.Generator, height: int, width: int,
                          floor_line: np.ndarray | None = None) -> np.ndarray:
    """A wall above a floor, a smooth noise texture or tiles, (H, W, 3) uint8.

    ``floor_line`` (2, 2): two pixel points (x, y) of the wall's base as the camera sees it, so
    the floor lies where the people stand; without it the line is random and horizontal.
    Smooth kinds are drawn at a quarter of the size and upsampled (they have no fine detail).
    """
    c1, c2, c3 = (_random_cloth_colour(rng) for _ in range(3))
    kind = int(rng.integers(3))
    step = 4 if kind < 2 else 2
    h, w = max(2, height // step), max(2, width // step)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy /= h
    xx /= w
    if kind == 0:  # wall above a floor
        if floor_line is None:
            below = yy - rng.uniform(0.3, 0.8)
        else:  # signed distance (in image heights) below the line through the two points
            (ax, ay), (bx, by) = floor_line
            dx, dy = (bx - ax) / width, (by - ay) / height
            below = ((xx - ax / width) * dy - (yy - ay / height) * dx) / -(np.hypot(dx, dy) + 1e-9)
        t = np.clip(below * 40, 0, 1)[..., None]
        img = c1 * (1 - 0.3 * yy[..., None]) * (1 - t) + c2 * (0.7 + 0.3 * yy[..., None]) * t
    elif kind == 1:  # smooth noise, several octaves of random plane waves
        v = np.zeros_like(xx)
        for octave in range(4):
            f = 2 ** octave * rng.uniform(1.5, 4)
            a = rng.uniform(0, 2 * np.pi)
            v += np.sin(2 * np.pi * f * (xx * np.cos(a) + yy * np.sin(a)) + rng.uniform(0, 6.3)) / 2 ** octave
        v = ((v - v.min()) / (np.ptp(v) + 1e-6))[..., None]
        img = c1 * v + c2 * (1 - v)
    else:  # tiles or bricks
        n = rng.uniform(4, 16)
        aspect = width / height * rng.uniform(0.5, 1.5)
        row = np.floor(yy * n)
        shift = 0.5 * (row % 2) if rng.random() < 0.5 else 0.0
        col = np.floor(xx * n * aspect + shift)
        grout = (((yy * n) % 1) < 0.06) | (((xx * n * aspect + shift) % 1) < 0.04)
        t = ((row + col) % 2)[..., None]
        img = c1 * t + c3 * (1 - t)
        img[grout] = c2 * 0.6
    img = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    return np.array(img.resize((width, height), Image.BILINEAR if kind < 2 else Image.NEAREST))


def background(rng: np.random.Generator, photos: list[str], height: int, width: int,
               floor_line: np.ndarray | None = None) -> np.ndarray:
    """A photo crop (60 % when photos exist) or a procedural texture, (H, W, 3) uint8."""
    if photos and rng.random() < 0.6:
        return photo_background(rng, photos[int(rng.integers(len(photos)))], height, width)
    return procedural_background(rng, height, width, floor_line)


def ground_shadow(rgb: np.ndarray, centre: np.ndarray, radius: float, K: np.ndarray, R: np.ndarray, C: np.ndarray,
                  strength: float) -> None:
    """Darken (in place) a soft ellipse: the projection of a ground disc of ``radius`` at ``centre``."""
    H, W = rgb.shape[:2]
    pts = centre + np.array([[0, 0, 0], [radius, 0, 0], [-radius, 0, 0], [0, radius, 0], [0, -radius, 0]])
    cam = (pts - C) @ R.T
    if (cam[:, 2] < 0.1).any():
        return
    uv = cam[:, :2] / cam[:, 2:] @ K[:2, :2].T + K[:2, 2]
    ax = np.abs(uv[1] - uv[2]).max() / 2 + 1
    ay = np.abs(uv[3] - uv[4]).max() / 2 + 1
    cx, cy = uv[0]
    x0, x1 = int(max(0, cx - 2 * ax)), int(min(W, cx + 2 * ax + 1))
    y0, y1 = int(max(0, cy - 2 * ay)), int(min(H, cy + 2 * ay + 1))
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    alpha = np.exp(-(((xx + 0.5 - cx) / ax) ** 2 + ((yy + 0.5 - cy) / ay) ** 2) * 1.5) * strength
    patch = rgb[y0:y1, x0:x1].astype(np.float32) * (1 - alpha[..., None])
    rgb[y0:y1, x0:x1] = patch.astype(np.uint8)


@functools.lru_cache(maxsize=2)
def noise_tile(size: int) -> np.ndarray:
    # Fixed seed: the tile is the same in every process; images pick a random window of it.
    return np.random.default_rng(20180618).standard_normal((size, size, 3), dtype=np.float32)


def degrade(rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """Slight blur and sensor noise so people are not trivially separable from the background."""
    H, W = rgb.shape[:2]
    if rng.random() < 0.6:
        rgb = np.asarray(Image.fromarray(rgb).filter(ImageFilter.BoxBlur(rng.uniform(0.3, 0.9))))
    if rng.random() < 0.5:
        size = max(1024, H, W) + 1
        tile = noise_tile(size)
        y0, x0 = int(rng.integers(0, size - H)), int(rng.integers(0, size - W))
        sigma = np.float32(rng.uniform(1, 5))
        rgb = np.clip(rgb + tile[y0:y0 + H, x0:x0 + W] * sigma, 0, 255).astype(np.uint8)
    return rgb
