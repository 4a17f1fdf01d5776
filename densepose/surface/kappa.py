"""Per-part kappa normalisers of the later DensePose protocol, computed on any surface.

The official evaluator divides geodesic errors by the mean geodesic distance between points on
each of 8 coarse parts (torso, hands, feet, upper legs, lower legs, upper arms, lower arms, head),
measured on SMPL. We measure the same quantity on our surface: for each body segment (one hand,
one upper leg, the torso, the head, ...) the mean distance between random point pairs drawn
uniformly by area, averaged over the segments of a group (left and right).
"""
from __future__ import annotations

import numpy as np

from densepose.surface.base import BodySurface

# Segments (sets of charts of one physical part) of each kappa group 1..8.
KAPPA_SEGMENTS: dict[int, tuple[tuple[int, ...], ...]] = {
    1: ((1, 2),),
    2: ((3,), (4,)),
    3: ((5,), (6,)),
    4: ((7, 9), (8, 10)),
    5: ((11, 13), (12, 14)),
    6: ((15, 17), (16, 18)),
    7: ((19, 21), (20, 22)),
    8: ((23, 24),),
}


def sample_surface_points(surface: BodySurface, faces: np.ndarray, n: int, rng: np.random.Generator):
    """n points uniform by area on the given faces -> (face (n,), bary (n, 3))."""
    p = surface.vertices[surface.faces[faces]]
    area = 0.5 * np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)
    face = faces[rng.choice(len(faces), size=n, p=area / area.sum())]
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    bary = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)
    return face, bary


def compute_kappa_groups(surface: BodySurface, pairs: int = 20000, seed: int = 0) -> np.ndarray:
    """(9,) mean geodesic distance within each kappa group (index 0 unused), metres."""
    rng = np.random.default_rng(seed)
    out = np.zeros(9)
    for group, segments in KAPPA_SEGMENTS.items():
        means = []
        for charts in segments:
            faces = np.flatnonzero(np.isin(surface.face_part, charts))
            fa, ba = sample_surface_points(surface, faces, pairs, rng)
            fb, bb = sample_surface_points(surface, faces, pairs, rng)
            means.append(surface.geodesics.between_points(fa, ba, fb, bb).mean())
        out[group] = float(np.mean(means))
    return out
