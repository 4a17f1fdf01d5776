"""Soft shadows of the key light: a shadow map (depth seen from the light) and percentage-closer
filtering. One map serves the people (self-shadowing: an arm on the trunk), the props and the
ground under them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from densepose.synth.camera import Camera, look_at
from densepose.synth.raster import fragments_multi

_DISTANCE = 200.0   # metres from the scene to the light camera: nearly parallel rays
_TAPS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


@dataclass
class ShadowMap:
    camera: Camera
    depth: np.ndarray       # (r, r) float32 distance from the light camera, inf where nothing
    bias: float             # metres: a surface is lit when it is at most this far behind the map


def build_shadow_map(meshes: list[np.ndarray], faces: list[np.ndarray], light_dir: np.ndarray,
                     resolution: int = 192) -> ShadowMap | None:
    """Depth of world meshes (list of (V, 3); faces list of (F, 3)) seen from ``light_dir``."""
    if not meshes:
        return None
    allv = np.concatenate(meshes)
    lo, hi = allv.min(0), allv.max(0)
    centre = (lo + hi) / 2
    radius = float(np.linalg.norm(hi - lo) / 2) + 0.05
    eye = centre + np.asarray(light_dir, dtype=np.float64) * _DISTANCE
    fov = 2 * np.arctan(radius / _DISTANCE)
    cam = look_at(eye, centre, resolution, resolution, fov)
    cam_meshes = [cam.to_camera(v) for v in meshes]
    pix, _, _, _, z = fragments_multi(cam_meshes, faces, cam.K, resolution, resolution, cull_backfaces=False)
    depth = np.full(resolution * resolution, np.inf, dtype=np.float32)
    depth[pix] = z
    texel = 2 * radius / resolution
    return ShadowMap(cam, depth.reshape(resolution, resolution), bias=max(0.02, 1.5 * texel))


def visibility(shadow: ShadowMap | None, points: np.ndarray, spread: int = 1) -> np.ndarray:
    """Fraction (N,) float32 of the key light reaching world points (N, 3): 5 taps ``spread`` texels apart."""
    if shadow is None or len(points) == 0:
        return np.ones(len(points), np.float32)
    cam = shadow.camera
    pc = (points - cam.C.astype(np.float32)) @ cam.R.T.astype(np.float32)
    z = pc[:, 2]
    x = pc[:, 0] / z * cam.K[0, 0] + cam.K[0, 2]
    y = pc[:, 1] / z * cam.K[1, 1] + cam.K[1, 2]
    r = shadow.depth.shape[0]
    ix, iy = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    lit = np.zeros(len(points), np.float32)
    limit = (z - shadow.bias).astype(np.float32)
    for dx, dy in _TAPS:
        cx, cy = ix + dx * spread, iy + dy * spread
        inside = (cx >= 0) & (cx < r) & (cy >= 0) & (cy < r)
        d = np.full(len(points), np.inf, np.float32)
        d[inside] = shadow.depth[cy[inside], cx[inside]]
        lit += d >= limit
    return lit / np.float32(len(_TAPS))
