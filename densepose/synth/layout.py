"""Where people and props stand: discs on the ground that never overlap, at the distances the shot
asks for, some beyond the image border (people cut by the frame), some props in front of people
(occluders) and the rest around and behind them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from densepose.synth.camera import CLOSE_SHOTS, Camera, Shot
from densepose.synth.distractors import Prop


@dataclass
class Placed:
    """A rigid move in the ground plane: rotate by ``yaw`` about Z, then add ``offset``."""

    index: int             # which input (person or prop)
    yaw: float
    offset: np.ndarray     # (3,)

    def apply(self, points: np.ndarray) -> np.ndarray:
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return points @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1.0]]) + self.offset


class Ground:
    """Occupied discs (x, y, radius) on the ground."""

    def __init__(self):
        self.discs: list[tuple[float, float, float]] = []

    def free(self, x: float, y: float, r: float) -> bool:
        return all(np.hypot(x - a, y - b) > r + c for a, b, c in self.discs)

    def take(self, x: float, y: float, r: float) -> None:
        self.discs.append((x, y, r))


def _ground_x(camera: Camera, u: float, depth: float) -> float:
    return float((u - camera.K[0, 2]) / camera.K[0, 0] * depth)


def place_people(rng: np.random.Generator, camera: Camera, shot: Shot, bodies: list[np.ndarray],
                 ground: Ground) -> list[Placed]:
    """Place posed bodies (list of (V, 3), Z up, any horizontal position) on the ground.

    Returns one :class:`Placed` per body that found room (a body that does not fit is dropped);
    ``apply`` puts its feet (lowest vertex) on z = 0.
    """
    W = camera.width
    lo_u, hi_u = (0.25, 0.75) if shot.kind in CLOSE_SHOTS else (-0.12, 1.12)
    out = []
    for i, v in enumerate(bodies):
        yaw = float(rng.uniform(-np.pi, np.pi))
        c, s = np.cos(yaw), np.sin(yaw)
        turned = v @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1.0]])
        centre = turned.mean(0)
        radius = float(np.sqrt(((turned[:, :2] - centre[:2]) ** 2).sum(1).max()))
        for _ in range(30):
            depth = shot.distance * rng.uniform(*shot.spread)
            x = _ground_x(camera, rng.uniform(lo_u, hi_u) * W, depth)
            if ground.free(x, depth, radius):
                break
        else:
            continue
        ground.take(x, depth, radius)
        offset = np.array([x - centre[0], depth - centre[1], -turned[:, 2].min()])
        out.append(Placed(i, yaw, offset))
    return out


def place_props(rng: np.random.Generator, camera: Camera, shot: Shot, props: list[Prop], ground: Ground,
                occluder_fraction: float = 0.35) -> list[Placed]:
    """Place props: ``occluder_fraction`` of them between the camera and a person, the rest anywhere
    in view from near the camera to far behind the people."""
    W, H = camera.width, camera.height
    people = list(ground.discs)
    out = []
    for i, prop in enumerate(props):
        r = prop.radius
        # No prop fills more than about 60 % of the frame (it would hide everything and cost the
        # most to render).
        near = max(1.0, 0.3 * shot.distance, camera.focal * max(prop.height, 2 * r) / (0.6 * min(H, W)))
        for _ in range(20):
            if people and rng.random() < occluder_fraction:
                px, py, _ = people[int(rng.integers(len(people)))]
                depth = max(near, py * rng.uniform(0.45, 0.85))
                x = px * depth / py + rng.normal(0, 0.3)
            else:
                depth = rng.uniform(near, max(near, shot.distance * rng.uniform(1.2, 3.0)) + 2)
                x = _ground_x(camera, rng.uniform(-0.2, 1.2) * W, depth)
            if ground.free(x, depth, r):
                break
        else:
            continue
        ground.take(x, depth, r)
        out.append(Placed(i, float(rng.uniform(-np.pi, np.pi)), np.array([x, depth, 0.0])))
    return out
