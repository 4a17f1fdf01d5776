"""Pinhole camera of a synthetic scene and its random draw (focal length, height, tilt, roll).

World frame: metres, Z up, ground at z = 0, the camera looks roughly along +Y. Camera frame
(OpenCV): x right, y down, z forward, so a world point p lands at ``K @ R @ (p - C)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Camera:
    K: np.ndarray   # (3, 3) intrinsics
    R: np.ndarray   # (3, 3) world -> camera rotation (rows: camera x, y, z axes in world)
    C: np.ndarray   # (3,) camera centre, world
    height: int
    width: int

    @property
    def focal(self) -> float:
        return float(self.K[0, 0])

    @property
    def forward(self) -> np.ndarray:
        """(3,) unit viewing direction in the world."""
        return self.R[2]

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) -> camera frame (N, 3)."""
        return (points - self.C) @ self.R.T

    def rays(self, step: int = 1) -> np.ndarray:
        """Unit world directions (h, w, 3) through the centres of ``step`` x ``step`` pixel blocks."""
        h, w = -(-self.height // step), -(-self.width // step)
        ys = (np.arange(h) + 0.5) * step
        xs = (np.arange(w) + 0.5) * step
        d = np.stack(np.broadcast_arrays((xs[None] - self.K[0, 2]) / self.K[0, 0],
                                         (ys[:, None] - self.K[1, 2]) / self.K[1, 1], np.ones((h, 1))), -1)
        d = d @ self.R  # camera -> world (R is orthonormal)
        return (d / np.linalg.norm(d, axis=-1, keepdims=True)).astype(np.float32)

    def ground_points(self, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where world rays (..., 3) from the camera meet the ground z = 0: points (..., 3) and a hit mask."""
        dz = rays[..., 2]
        hit = dz < -1e-4
        t = np.where(hit, -self.C[2] / np.where(hit, dz, -1.0), 0.0)
        return self.C + rays * t[..., None], hit


def look_camera(height: int, width: int, fov: float, position: np.ndarray, pitch: float, roll: float,
                yaw: float = 0.0) -> Camera:
    """A camera at ``position`` looking along +Y turned by ``yaw`` about Z, pitched down by
    ``pitch`` and rolled by ``roll`` (radians); ``fov`` is the field of view of the longer side."""
    f = 0.5 * max(height, width) / np.tan(fov / 2)
    K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    cy, sy = np.cos(yaw), np.sin(yaw)
    fwd = np.array([-sy * np.cos(pitch), cy * np.cos(pitch), -np.sin(pitch)])
    right = np.array([cy, sy, 0.0])
    down = np.cross(fwd, right)
    R = np.stack([right, down, fwd])
    cr, sr = np.cos(roll), np.sin(roll)
    R = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1.0]]) @ R
    return Camera(K, R, np.asarray(position, dtype=np.float64), height, width)


def look_at(eye: np.ndarray, target: np.ndarray, height: int, width: int, fov: float) -> Camera:
    """A camera at ``eye`` looking at ``target`` (no roll; world Z is "up" unless it looks along Z)."""
    fwd = np.asarray(target, dtype=np.float64) - eye
    fwd /= np.linalg.norm(fwd)
    up = np.array([0.0, 0.0, 1.0]) if abs(fwd[2]) < 0.99 else np.array([0.0, 1.0, 0.0])
    right = np.cross(fwd, up)
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    f = 0.5 * max(height, width) / np.tan(fov / 2)
    K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    return Camera(K, np.stack([right, down, fwd]), np.asarray(eye, dtype=np.float64), height, width)


#: Shots that frame people close up: placed near the image's middle, in a shallow band of depth.
CLOSE_SHOTS = ("close", "portrait")


@dataclass
class Shot:
    """What the camera frames: the distance of the people and the height it aims at."""

    kind: str          # "full", "close", "portrait", "far", "crowd"
    distance: float    # metres from the camera to the people's centre of placement
    spread: tuple[float, float]  # depth range as fractions of ``distance``


def sample_shot(rng: np.random.Generator, height: int, width: int, crowd: bool,
                portrait: bool = False) -> tuple[Camera, Shot]:
    """A random photographer: focal length (wide to tele), camera height and aim.

    Shots: "full" (whole people filling 30-100 % of the height), "close" (upper body, cut by the
    border), "far" (small people), "crowd" (many small people seen from higher up), and, only
    when ``portrait`` asks for it, "portrait" (head and shoulders, cut at the chest, as a
    photographer frames a portrait; the other kinds seldom cut a person above the waist).
    """
    fov = np.radians(np.exp(rng.uniform(np.log(18), np.log(80))))
    f = 0.5 * max(height, width) / np.tan(fov / 2)
    if crowd:
        kind = "crowd"
    elif portrait:
        kind = "portrait"
    else:
        kind = str(rng.choice(["full", "close", "far"], p=[0.62, 0.18, 0.20]))
    if kind == "portrait":
        frac = rng.uniform(2.4, 3.6)         # the image spans 0.47-0.71 m of a 1.7 m person
        cam_h = rng.uniform(1.3, 1.7)
        target_z = rng.uniform(1.2, 1.4)     # aimed at the chest
    elif kind == "close":
        frac = rng.uniform(1.3, 2.6)         # apparent height of a 1.7 m person / image height
        cam_h = rng.uniform(1.1, 1.8)
        target_z = rng.uniform(1.0, 1.5)
    elif kind == "full":
        frac = rng.uniform(0.3, 1.0)
        cam_h = rng.uniform(0.4, 2.4) if rng.random() < 0.85 else rng.uniform(2.4, 5.0)
        target_z = rng.uniform(0.5, 1.3)
    elif kind == "far":
        frac = rng.uniform(0.06, 0.3)
        cam_h = rng.uniform(1.0, 6.0)
        target_z = rng.uniform(0.0, 1.0)
    else:
        frac = rng.uniform(0.08, 0.3)
        cam_h = rng.uniform(2.0, 9.0)
        target_z = 0.5
    distance = f * 1.7 / (frac * height)
    pitch = np.arctan2(cam_h - target_z, distance) + rng.normal(0, 0.04)
    roll = rng.normal(0, np.radians(3))
    camera = look_camera(height, width, fov, np.array([0.0, 0.0, cam_h]), pitch, roll)
    spread = (0.6, 2.5) if kind == "crowd" else ((0.9, 1.2) if kind in CLOSE_SHOTS else (0.8, 1.4))
    # The camera looks down: keep the distance measured along the ground.
    return camera, Shot(kind, float(distance * np.cos(pitch)), spread)
