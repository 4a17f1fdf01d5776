"""Environment maps: OpenEXR panoramas from a folder, or procedural skies and studios without one.

A panorama is an equirectangular (h, w, 3) float32 array of linear radiance. Row 0 looks
straight up (+Z), the last row straight down; column c looks at azimuth ``2 pi (c + 0.5) / w``
measured from +X towards +Y. :func:`directions` and :func:`sample` are the one home of that
convention (lighting projects panoramas onto spherical harmonics with it, backgrounds look
through the camera into them with it).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from densepose.errors import UserError

#: Panoramas are kept at most this wide in memory (the shared maps are 512 or 1024 wide).
MAX_WIDTH = 1024


def list_hdris(folder: str | Path | None) -> list[str]:
    """Sorted ``.exr`` paths under ``folder`` (recursively); empty when None or missing."""
    if folder is None or not Path(folder).is_dir():
        return []
    return sorted(str(p) for p in Path(folder).rglob("*.exr"))


@functools.lru_cache(maxsize=32)
def load_hdri(path: str) -> np.ndarray:
    """(h, w, 3) float32 linear radiance of an OpenEXR panorama (cached per process)."""
    try:
        import OpenEXR
    except ImportError:  # pragma: no cover - it is a dependency; a broken install still gets a clear line
        raise UserError(f"{path}: reading HDR maps needs the 'openexr' package (pip install openexr)") from None
    try:
        with OpenEXR.File(path) as f:
            channels = f.channels()
            if "RGB" in channels:
                rgb = np.asarray(channels["RGB"].pixels, dtype=np.float32)
            else:
                rgb = np.stack([np.asarray(channels[c].pixels, dtype=np.float32) for c in "RGB"], axis=-1)
    except (OSError, KeyError, RuntimeError) as exc:
        raise UserError(f"{path}: not a readable RGB OpenEXR panorama ({exc})") from None
    rgb = np.nan_to_num(np.clip(rgb[..., :3], 0, 6e4))
    while rgb.shape[1] > MAX_WIDTH:  # 2x2 box downsampling keeps the energy
        h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
        rgb = rgb[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    return np.ascontiguousarray(rgb, dtype=np.float32)


def directions(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions (h, w, 3) of the pixel centres of a panorama and their solid angles (h, 1)."""
    theta = (np.arange(height) + 0.5) / height * np.pi          # polar angle from +Z
    phi = (np.arange(width) + 0.5) / width * 2 * np.pi
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    d = np.stack([st * np.cos(phi)[None], st * np.sin(phi)[None], np.broadcast_to(ct, (height, width))], axis=-1)
    solid = (2 * np.pi / width) * (np.pi / height) * st
    return d, solid


def sample(pano: np.ndarray, dirs: np.ndarray, yaw: float = 0.0) -> np.ndarray:
    """Bilinear radiance (..., 3) of ``pano`` in world directions ``dirs`` (..., 3); the panorama
    is turned by ``yaw`` radians about +Z."""
    h, w = pano.shape[:2]
    x, y, z = dirs[..., 0], dirs[..., 1], dirs[..., 2]
    phi = (np.arctan2(y, x) - yaw) % (2 * np.pi)
    theta = np.arccos(np.clip(z / (np.sqrt(x * x + y * y + z * z) + 1e-12), -1, 1))
    fx = phi / (2 * np.pi) * w - 0.5
    fy = np.clip(theta / np.pi * h - 0.5, 0, h - 1)
    x0 = np.floor(fx).astype(np.int64)
    y0 = np.minimum(np.floor(fy).astype(np.int64), h - 2) if h > 1 else np.zeros_like(x0)
    tx = (fx - x0)[..., None].astype(np.float32)
    ty = (fy - y0)[..., None].astype(np.float32)
    x0 %= w
    x1 = (x0 + 1) % w
    y1 = np.minimum(y0 + 1, h - 1)
    top = pano[y0, x0] * (1 - tx) + pano[y0, x1] * tx
    bottom = pano[y1, x0] * (1 - tx) + pano[y1, x1] * tx
    return top * (1 - ty) + bottom * ty


def procedural_panorama(rng: np.random.Generator, height: int = 64, width: int = 128) -> np.ndarray:
    """An outdoor sky with a sun over the ground, or a studio with soft boxes, (h, w, 3) float32."""
    d, _ = directions(height, width)
    z = d[..., 2:3]
    if rng.random() < 0.55:  # outdoor: blue-to-haze sky, a sun (or overcast), brownish-grey ground
        zenith = np.array([0.25, 0.45, 1.0]) * rng.uniform(0.6, 1.4)
        horizon = np.array([0.95, 0.95, 1.0]) * rng.uniform(0.8, 1.6)
        ground = rng.uniform(0.15, 0.45) * np.clip(rng.normal([1.0, 0.9, 0.75], 0.08), 0.4, 1.3)
        sky = horizon + (zenith - horizon) * np.clip(z, 0, 1) ** 0.6
        pano = np.where(z > 0, sky, ground * (0.6 + 0.4 * np.clip(1 + z, 0, 1)))
        if rng.random() < 0.75:
            elev = np.radians(rng.uniform(12, 70))
            az = rng.uniform(0, 2 * np.pi)
            sun = np.array([np.cos(elev) * np.cos(az), np.cos(elev) * np.sin(az), np.sin(elev)])
            cos = d @ sun
            warm = np.array([1.0, 0.9, 0.75]) if elev < 0.4 else np.array([1.0, 0.97, 0.92])
            pano = pano + warm * (np.exp((cos - 1) * 4000) * rng.uniform(2e3, 8e3) + np.exp((cos - 1) * 30) * 2.0)[..., None]
    else:  # studio or room: dim walls, a few bright rectangles
        wall = rng.uniform(0.05, 0.4) * np.clip(rng.normal(1.0, 0.1, 3), 0.7, 1.3)
        pano = np.broadcast_to(wall * (0.7 + 0.3 * np.clip(z + 0.5, 0, 1)), d.shape).copy()
        for _ in range(int(rng.integers(1, 4))):
            elev = np.radians(rng.uniform(5, 75))
            az = rng.uniform(0, 2 * np.pi)
            c = np.array([np.cos(elev) * np.cos(az), np.cos(elev) * np.sin(az), np.sin(elev)])
            size = rng.uniform(0.1, 0.35)
            pano += (np.exp((d @ c - 1) / (size * size * 0.5)) * rng.uniform(5, 40))[..., None] * np.clip(
                rng.normal(1.0, 0.07, 3), 0.8, 1.2)
    return pano.astype(np.float32)
