"""Image-based lighting: a panorama split into a key light (its brightest part) and a smooth
remainder projected on 9 spherical harmonics (irradiance, Ramamoorthi & Hanrahan 2001).

Shading a point with normal n (world frame, unit) and albedo a in linear light::

    radiance = a / pi * (E_sh(n) * occlusion + key_rgb * max(0, n . key_dir) * visibility)
               + specular * key_rgb * max(0, n . h) ** shininess

The key light carries the energy above a clip level of the panorama (a sun, a lamp), so its
shadows are as strong as the map says; maps without a bright source get a weak key light.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from densepose.synth import hdri

# Convolution of radiance with the clamped cosine, per SH band (irradiance = A_l * L_lm).
_BAND = np.array([np.pi] + [2 * np.pi / 3] * 3 + [np.pi / 4] * 5)
_SMALL = (32, 64)  # panoramas are projected at this resolution (irradiance is smooth)


def sh_basis(n: np.ndarray) -> np.ndarray:
    """Real SH basis up to l = 2 at unit directions (..., 3) -> (..., 9) float32."""
    x, y, z = n[..., 0], n[..., 1], n[..., 2]
    return np.stack([
        np.full_like(x, 0.282095), 0.488603 * y, 0.488603 * z, 0.488603 * x,
        1.092548 * x * y, 1.092548 * y * z, 0.315392 * (3 * z * z - 1), 1.092548 * x * z, 0.546274 * (x * x - y * y),
    ], axis=-1).astype(np.float32)


@dataclass
class Lighting:
    """Lighting of one image, world frame (Z up)."""

    sh: np.ndarray          # (9, 3) irradiance coefficients, linear RGB
    key_dir: np.ndarray     # (3,) unit vector towards the key light
    key_rgb: np.ndarray     # (3,) irradiance of the key light on a surface facing it
    pano: np.ndarray        # (h, w, 3) the panorama (for backgrounds)
    yaw: float              # how far the panorama is turned about +Z

    def irradiance(self, normals: np.ndarray) -> np.ndarray:
        """Smooth (ambient) irradiance (N, 3) on unit world normals (N, 3)."""
        return np.maximum(sh_basis(normals) @ self.sh.astype(np.float32), 0.0)

    def reference_irradiance(self, view_dir: np.ndarray) -> float:
        """Mean irradiance on a surface facing the camera (view_dir: camera forward, world): exposure anchor."""
        n = -view_dir / np.linalg.norm(view_dir)
        e = self.irradiance(n[None])[0] + self.key_rgb * max(0.0, float(n @ self.key_dir))
        return float(e.mean())


@functools.lru_cache(maxsize=32)
def _small(path: str) -> np.ndarray:
    return _downsample(hdri.load_hdri(path), *_SMALL)


def preload(hdris: list[str]) -> None:
    """Read every map once (about 0.1 s each) so that per-image times do not include first reads."""
    for path in hdris:
        _small(path)


def _downsample(pano: np.ndarray, h: int, w: int) -> np.ndarray:
    """(h, w, 3): box averages when the sizes divide, else nearest pixels."""
    H, W = pano.shape[:2]
    if H % h or W % w:
        return pano[((np.arange(h) + 0.5) * H / h).astype(int)][:, ((np.arange(w) + 0.5) * W / w).astype(int)]
    return pano.reshape(h, H // h, w, W // w, 3).mean(axis=(1, 3)).astype(np.float32)


def lighting_from_panorama(pano: np.ndarray, yaw: float, small: np.ndarray | None = None,
                           min_key_fraction: float = 0.15) -> Lighting:
    """Split ``pano`` (turned by ``yaw``) into SH irradiance and a key light.

    ``small``: the panorama already at ``_SMALL`` resolution (cached per file); computed when None.
    ``min_key_fraction``: a key light of at least this share of the ambient irradiance is added in
    the direction of the brightest region, so that every image has some directional shading.
    """
    if small is None:
        small = _downsample(pano, *_SMALL) if pano.shape[0] >= _SMALL[0] else pano
    d, solid = hdri.directions(*small.shape[:2])
    c, s = np.cos(yaw), np.sin(yaw)
    d = d @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1.0]])  # world direction of each panorama pixel
    lum = small @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    weight = solid * lum
    clip = max(float(np.percentile(lum, 98)), 4.0 * float((weight.sum() / solid.sum() / small.shape[1])))
    # Pixels brighter than the clip give their excess (colour kept) to the key light.
    keep = np.minimum(1.0, clip / np.maximum(lum, 1e-9))[..., None]
    smooth = small * keep
    excess = (small - smooth) * solid[..., None]                     # (h, w, 3) energy above the clip
    basis = sh_basis(d)                                              # (h, w, 9)
    L = np.einsum("hwk,hwc->kc", basis * solid[..., None], smooth)   # radiance coefficients
    sh = (L * _BAND[:, None]).astype(np.float32)
    e_key = excess.sum(axis=(0, 1))
    w_key = excess.sum(axis=-1)
    if w_key.sum() > 0:
        key_dir = (d * w_key[..., None]).sum(axis=(0, 1))
    else:
        key_dir = (d * weight[..., None]).sum(axis=(0, 1))
    key_dir = key_dir / (np.linalg.norm(key_dir) + 1e-9)
    key_dir = _above_horizon(key_dir)
    ambient = float(sh[0].mean() * 0.282095)
    if e_key.mean() < min_key_fraction * ambient:
        tint = smooth.reshape(-1, 3).mean(0)
        e_key = e_key + tint / (tint.mean() + 1e-9) * min_key_fraction * ambient
    return Lighting(sh, key_dir.astype(np.float32), e_key.astype(np.float32), pano, float(yaw))


def _above_horizon(direction: np.ndarray, min_elevation_deg: float = 12.0) -> np.ndarray:
    """Raise a light direction to at least ``min_elevation_deg`` (ground shadows stay finite)."""
    horiz = np.hypot(direction[0], direction[1])
    elev = np.arctan2(direction[2], horiz)
    lo = np.radians(min_elevation_deg)
    if elev >= lo:
        return direction
    az = np.arctan2(direction[1], direction[0])
    return np.array([np.cos(lo) * np.cos(az), np.cos(lo) * np.sin(az), np.sin(lo)])


def sample_lighting(rng: np.random.Generator, hdris: list[str]) -> Lighting:
    """A random map from ``hdris`` (92 % when there are any) or a procedural sky/studio, turned at random."""
    yaw = float(rng.uniform(0, 2 * np.pi))
    if hdris and rng.random() < 0.92:
        path = hdris[int(rng.integers(len(hdris)))]
        pano = hdri.load_hdri(path)
        light = lighting_from_panorama(pano, yaw, _small(path))
    else:
        light = lighting_from_panorama(hdri.procedural_panorama(rng), yaw)
    # Strength jitter (a cloud, a second lamp); the key light's colour is kept mild (a map's
    # clipped sky can otherwise hand it a saturated blue).
    key = light.key_rgb * np.float32(rng.uniform(0.6, 1.3))
    light.key_rgb = (key.mean() + 0.4 * (key - key.mean())).astype(np.float32)
    return light


def shade(albedo: np.ndarray, normals: np.ndarray, light: Lighting, view: np.ndarray, visibility: np.ndarray,
          specular: np.ndarray, shininess: np.ndarray, occlusion: np.ndarray | None = None) -> np.ndarray:
    """Linear radiance (N, 3) of surface points.

    Args: albedo (N, 3) linear 0..1; normals (N, 3) unit world; view (N, 3) unit world vectors
    from the point to the camera; visibility (N,) of the key light 0..1; specular (N,) strength,
    shininess (N,) Blinn-Phong exponent; occlusion (N,) ambient occlusion 0..1 or None.
    """
    amb = light.irradiance(normals)
    if occlusion is not None:
        amb = amb * occlusion[:, None]
    ndl = np.clip(normals @ light.key_dir, 0, None) * visibility
    diffuse = albedo * (amb + ndl[:, None] * light.key_rgb) / np.float32(np.pi)
    half = view + light.key_dir
    half /= np.linalg.norm(half, axis=1, keepdims=True) + 1e-9
    spec = np.clip((normals * half).sum(1), 0, None) ** shininess * specular * visibility
    return diffuse + spec[:, None] * light.key_rgb * np.float32(1 / np.pi)
