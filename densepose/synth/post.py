"""What a real camera does to a picture: tone mapping, white balance, colour grading, defocus,
motion blur, sensor noise and JPEG artefacts. None of it moves a pixel's content, so the
ground truth of a render stays exact (blur only softens edges, as in a photograph).
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

from densepose.synth.appearance import noise_tile


def tone_map(linear: np.ndarray, exposure: float) -> np.ndarray:
    """Linear radiance (..., 3) -> display sRGB 0..1: exposure, a filmic shoulder, gamma 2.2."""
    x = linear * np.float32(exposure)
    white = np.float32(6.0)
    y = x * (1 + x / (white * white)) / (1 + x)
    return np.clip(y, 0, 1) ** np.float32(1 / 2.2)


def srgb_to_linear(rgb_u8: np.ndarray) -> np.ndarray:
    """uint8 sRGB (..., 3) -> float32 linear (gamma 2.2, the inverse of :func:`tone_map`'s curve at low values)."""
    return (rgb_u8.astype(np.float32) / 255) ** np.float32(2.2)


def white_balance_and_grade(rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8: per-channel gains (white balance), contrast curve, saturation,
    lift; about 8 % of images end up black-and-white (as many old and press photographs)."""
    gains = np.clip(rng.normal(1.0, 0.06, 3), 0.8, 1.2)
    contrast = rng.uniform(0.85, 1.25)
    lift = rng.uniform(-0.03, 0.05)
    ramp = np.arange(256, dtype=np.float32) / 255
    luts = []
    for g in gains:
        x = np.clip(ramp * g, 0, 1)
        x = 0.5 + (x - 0.5) * contrast  # linear contrast about mid-grey
        x = lift + (1 - lift) * x
        luts.append(np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8))
    out = np.asarray(Image.fromarray(rgb).point(np.concatenate(luts).tolist()))
    u = rng.random()
    if u < 0.08:
        grey = (out.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if u < 0.4:  # saturation change
        s = np.float32(rng.uniform(0.6, 1.3))
        f = out.astype(np.float32)
        grey = f.mean(axis=-1, keepdims=True)
        out = np.clip(grey + (f - grey) * s, 0, 255).astype(np.uint8)
    return out


def defocus(rng: np.random.Generator, rgb: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Depth of field: pixels away from a focus depth get a blur that grows with |1/z - 1/z_focus|.

    Two layers (sharp, blurred) mixed per pixel; ``depth`` (H, W) is inf on the background.
    """
    finite = np.isfinite(depth)
    if not finite.any():
        return np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.5))))
    focus = float(np.percentile(depth[finite], rng.uniform(5, 60)))
    strength = rng.uniform(1.0, 6.0)  # blur radius in pixels at infinity
    inv = np.where(finite, 1 / np.maximum(depth, 1e-3), 0.0)
    radius = np.abs(inv - 1 / focus) * focus * strength
    blurred = np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(strength)), dtype=np.float32)
    t = np.clip(radius / strength, 0, 1)[..., None].astype(np.float32)
    return (rgb * (1 - t) + blurred * t + 0.5).astype(np.uint8)


def motion_blur(rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """Camera shake: the image averaged along a short random line (3-9 px)."""
    length = int(rng.integers(3, 10))
    angle = rng.uniform(0, np.pi)
    dx, dy = np.cos(angle), np.sin(angle)
    acc = np.zeros(rgb.shape, np.float32)
    for k in range(length):
        t = k - (length - 1) / 2
        acc += np.roll(rgb, (int(round(t * dy)), int(round(t * dx))), axis=(0, 1))
    return (acc / length + 0.5).astype(np.uint8)


def sensor_noise(rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """Gaussian read noise plus brightness-dependent shot noise (a window of a fixed noise tile)."""
    H, W = rgb.shape[:2]
    size = max(1024, H, W) + 1
    tile = noise_tile(size)
    y0, x0 = int(rng.integers(0, size - H)), int(rng.integers(0, size - W))
    f = rgb.astype(np.float32)
    sigma = np.float32(rng.uniform(1, 4)) + np.sqrt(f) * np.float32(rng.uniform(0, 0.5))
    return np.clip(f + tile[y0:y0 + H, x0:x0 + W] * sigma, 0, 255).astype(np.uint8)


def jpeg_artefacts(rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """Round trip through a low-quality JPEG (quality 25-75)."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=int(rng.integers(25, 76)))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def camera_effects(rng: np.random.Generator, rgb: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """The random chain applied to every realistic render, in the order a camera applies them."""
    if rng.random() < 0.3:
        rgb = defocus(rng, rgb, depth)
    else:  # lens softness: every photograph is a little soft at 1:1 (one box pass: cheap, and
        # below a pixel of radius indistinguishable from a Gaussian)
        rgb = np.asarray(Image.fromarray(rgb).filter(ImageFilter.BoxBlur(rng.uniform(0.3, 0.8))))
    if rng.random() < 0.12:
        rgb = motion_blur(rng, rgb)
    if rng.random() < 0.6:
        rgb = sensor_noise(rng, rgb)
    rgb = white_balance_and_grade(rng, rgb)
    if rng.random() < 0.3:
        rgb = jpeg_artefacts(rng, rgb)
    return rgb
