"""Procedural texture images for scene objects: wood, cardboard, paint, metal, flags, signs and
posters with text. Each is an (h, w, 3) uint8 sRGB image drawn with NumPy and PIL (no files).
"""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WORDS = ("EXIT", "OPEN", "SALE", "STOP", "CAFE", "HOTEL", "PARKING", "BUS", "POLICE", "NO ENTRY", "TAXI",
         "PHARMACY", "WELCOME", "KEEP OUT", "FRAGILE", "THIS SIDE UP", "MARKET", "FRESH", "24 H", "BAR",
         "INFO", "TICKETS", "GATE 3", "ZONE B", "PUSH", "PULL", "DANGER", "SCHOOL", "LIBRARY", "METRO")
KINDS = ("wood", "cardboard", "paint", "metal", "flag", "sign", "poster", "fabric")


@functools.lru_cache(maxsize=8)
def font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def smooth_noise(rng: np.random.Generator, h: int, w: int, scale: float, octaves: int = 3) -> np.ndarray:
    """(h, w) float32 in 0..1: random plane waves over a few octaves.

    sin(ax + by + c) = sin(ax + c) cos(by) + cos(ax + c) sin(by): each wave is two outer products.
    """
    ys = np.arange(h, dtype=np.float32)
    xs = np.arange(w, dtype=np.float32)
    v = np.zeros((h, w), np.float32)
    for o in range(octaves):
        for _ in range(2):
            a = rng.uniform(0, 2 * np.pi)
            f = (2 ** o) * scale * rng.uniform(0.7, 1.4) / max(h, w) * 2 * np.pi
            px = xs * np.float32(f * np.cos(a)) + np.float32(rng.uniform(0, 6.3))
            py = ys * np.float32(f * np.sin(a))
            v += (np.outer(np.cos(py), np.sin(px)) + np.outer(np.sin(py), np.cos(px))) / np.float32(2 ** o)
    return (v - v.min()) / (np.ptp(v) + 1e-6)


def colour(rng: np.random.Generator, vivid: bool = False) -> np.ndarray:
    """A random object colour (3,) sRGB 0..255: mostly muted, sometimes vivid."""
    from densepose.synth.appearance import hsv_to_rgb

    if not vivid and rng.random() < 0.5:
        return np.clip(rng.uniform(30, 230) + rng.normal(0, 12, 3), 0, 255)
    return hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.4, 1.0) if vivid else rng.uniform(0.1, 0.6),
                       rng.uniform(0.3, 0.95)) * 255


def _text_image(rng: np.random.Generator, size: tuple[int, int], bg: np.ndarray, fg: np.ndarray,
                words: int = 1) -> Image.Image:
    img = Image.new("RGB", size, tuple(int(c) for c in bg))
    draw = ImageDraw.Draw(img)
    w, h = size
    lines = [WORDS[int(rng.integers(len(WORDS)))] for _ in range(words)]
    fsize = max(8, int(min(h / (len(lines) + 0.6), w / max(len(s) for s in lines) * 1.6)))
    f = font(fsize)
    y = (h - fsize * len(lines)) / 2
    for line in lines:
        tw = draw.textlength(line, font=f)
        draw.text(((w - tw) / 2, y), line, fill=tuple(int(c) for c in fg), font=f)
        y += fsize
    return img


def texture(rng: np.random.Generator, kind: str, size: int | None = None) -> np.ndarray:
    """One (size, size, 3) uint8 texture of ``kind`` (see ``KINDS``); the default size is 96 for
    kinds with text or sharp shapes and 48 for smooth ones (props cover few pixels)."""
    s = size or (96 if kind in ("cardboard", "flag", "sign", "poster") else 48)
    if kind == "wood":
        base = np.array([150, 100, 60]) * rng.uniform(0.5, 1.3)
        n = smooth_noise(rng, s, s, 2)
        grain = np.sin((np.arange(s)[None, :] / s * rng.uniform(20, 60)) + n * 8)[..., None]
        img = base * (0.8 + 0.15 * grain) * (0.85 + 0.3 * n[..., None])
    elif kind == "cardboard":
        base = np.array([190, 150, 100]) * rng.uniform(0.8, 1.1)
        img = base * (0.9 + 0.15 * smooth_noise(rng, s, s, 6)[..., None])
        if rng.random() < 0.6:  # a printed label
            lab = np.asarray(_text_image(rng, (s, s // 3), base * 0.9, np.array([30, 30, 30])))
            img[s // 3: s // 3 + lab.shape[0]] = lab
    elif kind == "metal":
        v = rng.uniform(90, 210)
        img = np.full((s, s, 3), v) * (0.9 + 0.15 * smooth_noise(rng, s, s, 1)[..., None])
        img = img + rng.normal(0, 4, (s, 1, 1))  # brushed streaks
    elif kind == "flag":
        img = _flag(rng, s)
    elif kind == "sign":
        bg, fg = (colour(rng, vivid=True), np.array([250, 250, 250])) if rng.random() < 0.6 else (
            np.array([240, 240, 235]), colour(rng, vivid=True) * 0.6)
        img = np.asarray(_text_image(rng, (s, s // 2), bg, fg, words=1 + int(rng.random() < 0.3))).astype(np.float64)
        img = np.concatenate([img, img[::-1] * 0 + bg], axis=0)[:s]
        img[:2], img[-2:], img[:, :2], img[:, -2:] = fg, fg, fg, fg
    elif kind == "poster":
        img = np.full((s, s, 3), colour(rng)) * 1.0
        pil = Image.fromarray(img.astype(np.uint8))
        draw = ImageDraw.Draw(pil)
        for _ in range(int(rng.integers(2, 6))):
            x0, y0 = rng.uniform(0, s, 2)
            x1, y1 = x0 + rng.uniform(10, s / 2), y0 + rng.uniform(10, s / 2)
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape([x0, y0, x1, y1], fill=tuple(int(c) for c in colour(rng, vivid=True)))
        draw.text((4, s * 0.7), WORDS[int(rng.integers(len(WORDS)))], fill=(20, 20, 20), font=font(s // 6))
        img = np.asarray(pil).astype(np.float64)
    elif kind == "fabric":
        from densepose.synth import fabrics

        fab = fabrics.sample_fabric(rng, "top")
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s * 0.6
        img = fabrics.fabric_albedo(fab, np.stack([xx.ravel(), np.zeros(s * s, np.float32), yy.ravel()], 1))
        img = img.reshape(s, s, 3) * 255
    else:  # paint
        img = np.full((s, s, 3), colour(rng)) * (0.93 + 0.1 * smooth_noise(rng, s, s, 4)[..., None])
    return np.clip(img, 0, 255).astype(np.uint8)


def _flag(rng: np.random.Generator, s: int) -> np.ndarray:
    """Tricolours, stripes with a canton, or crosses, in flag colours."""
    palette = np.array([[200, 20, 30], [255, 255, 255], [0, 40, 120], [0, 120, 60], [250, 200, 0],
                        [20, 20, 20], [0, 90, 180], [230, 90, 0]], dtype=np.float64)
    c = palette[rng.choice(len(palette), 3, replace=False)]
    yy, xx = np.mgrid[0:s, 0:s] / s
    kind = int(rng.integers(4))
    if kind == 0:
        band = np.minimum((xx * 3).astype(int), 2)
    elif kind == 1:
        band = np.minimum((yy * 3).astype(int), 2)
    elif kind == 2:  # stripes with a canton of dots
        band = ((yy * rng.integers(5, 14)).astype(int) % 2)
        canton = (xx < 0.45) & (yy < 0.5)
        band = np.where(canton, 2, band)
        dots = canton & (((xx * 18) % 1 - 0.5) ** 2 + ((yy * 18) % 1 - 0.5) ** 2 < 0.06)
        band = np.where(dots, 1, band)
    else:  # a cross
        band = ((np.abs(xx - rng.uniform(0.3, 0.5)) < 0.08) | (np.abs(yy - 0.5) < 0.08)).astype(int)
    return c[band]
