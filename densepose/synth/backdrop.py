"""Backgrounds of realistic renders and the shadows people and props cast on the ground.

Three kinds: the lighting panorama itself seen through the camera (a perspective crop of the HDR
map, so background and light agree), a photo crop, or a procedural wall/floor/texture.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from densepose.synth import appearance, hdri, post, shadows
from densepose.synth.camera import Camera
from densepose.synth.lighting import Lighting

_STEP = 4  # the panorama view is computed at a quarter resolution (the maps are coarser than that anyway)
_SHADOW_STEP = 4  # ground shadows at a quarter resolution, then blurred and enlarged (they are soft)


def panorama_view(camera: Camera, light: Lighting, exposure: float) -> np.ndarray:
    """(H, W, 3) uint8: the lighting panorama through ``camera``, tone-mapped like the people."""
    rays = camera.rays(_STEP)
    radiance = hdri.sample(light.pano, rays, light.yaw)
    small = (post.tone_map(radiance, exposure) * 255 + 0.5).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((camera.width, camera.height), Image.BILINEAR))


def floor_line(camera: Camera, distance: float) -> np.ndarray | None:
    """Pixel points (2, 2) of a wall's base ``distance`` metres ahead (None when not in front)."""
    ends = np.array([[-50.0, distance, 0.0], [50.0, distance, 0.0]])
    cam = camera.to_camera(ends)
    if (cam[:, 2] < 0.1).any():
        return None
    return cam[:, :2] / cam[:, 2:] @ camera.K[:2, :2].T + camera.K[:2, 2]


def sample_backdrop(rng: np.random.Generator, camera: Camera, light: Lighting, exposure: float,
                    photos: list[str], from_file: bool, wall_distance: float) -> tuple[np.ndarray, str]:
    """(H, W, 3) uint8 background and its kind ("panorama", "photo", "procedural").

    ``from_file``: the lighting comes from a real HDR map (procedural skies make poor backgrounds).
    With one: 80 % panorama views, 10 % photos, 10 % procedural; without: 80 % photos (when given).
    """
    H, W = camera.height, camera.width
    u = rng.random()
    if from_file and u < 0.8:
        return panorama_view(camera, light, exposure), "panorama"
    if photos and u < (0.9 if from_file else 0.8):
        return appearance.photo_background(rng, photos[int(rng.integers(len(photos)))], H, W), "photo"
    return appearance.procedural_background(rng, H, W, floor_line(camera, wall_distance)), "procedural"


def ground_shadows(rgb: np.ndarray, camera: Camera, shadow: shadows.ShadowMap | None, light: Lighting,
                   background: np.ndarray) -> None:
    """Darken (in place) background pixels whose ground point the key light does not reach.

    ``background`` (H, W) bool marks pixels showing the background. The darkening is the key
    light's share of the ground's irradiance, so overcast maps give faint shadows.
    """
    if shadow is None:
        return
    rays = camera.rays(_SHADOW_STEP)
    pts, hit = camera.ground_points(rays)
    if not hit.any():
        return
    vis = np.ones(hit.shape, np.float32)
    vis[hit] = shadows.visibility(shadow, pts[hit].astype(np.float32), spread=2)
    if vis.min() >= 1:
        return
    up = np.array([[0.0, 0.0, 1.0]], dtype=np.float32)
    ambient = float(light.irradiance(up)[0].mean())
    key = float(light.key_rgb.mean() * max(0.0, light.key_dir[2]))
    share = key / (key + ambient + 1e-6)
    shade = 1 - share * (1 - vis)
    small = Image.fromarray((shade * 255 + 0.5).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0))
    full = np.asarray(small.resize((camera.width, camera.height), Image.BILINEAR))
    gain = np.where(background, full.astype(np.uint16) + 1, 256)  # (x * gain) >> 8: integer multiply
    rgb[:] = ((rgb.astype(np.uint16) * gain[..., None]) >> 8).astype(np.uint8)


def contact_shadows(rgb: np.ndarray, camera: Camera, bodies: list[np.ndarray], light: Lighting) -> None:
    """Darken (in place) soft ellipses under each body's feet: the ambient occlusion of the ground
    near a person, strongest under overcast light (no key-light shadow to anchor them)."""
    up = np.array([[0.0, 0.0, 1.0]], dtype=np.float32)
    ambient = float(light.irradiance(up)[0].mean())
    key = float(light.key_rgb.mean() * max(0.0, light.key_dir[2]))
    strength = 0.15 + 0.3 * ambient / (ambient + key + 1e-6)
    for v in bodies:
        low = v[v[:, 2] < 0.08]
        if len(low) == 0:
            continue
        centre = np.array([*low[:, :2].mean(0), 0.0])
        radius = float(np.clip(np.sqrt(((low[:, :2] - centre[:2]) ** 2).sum(1).max()), 0.15, 0.6))
        appearance.ground_shadow(rgb, centre, radius, camera.K, camera.R, camera.C, strength)
