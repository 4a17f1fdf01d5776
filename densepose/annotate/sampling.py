"""Step 2's points: roughly equidistant samples of each painted part (k-means over its pixels)."""
from __future__ import annotations

import numpy as np

from densepose.surface.parts import NUM_MASK_PARTS

MAX_POINTS_PER_PART = 14
PIXELS_PER_POINT = 250  # in the 256x256 box: a torso gets the full 14, a hand 1-2
MIN_PART_PIXELS = 10


def kmeans_points(coords: np.ndarray, k: int, iters: int = 20, seed: int = 0) -> np.ndarray:
    """k-means centres of ``coords`` (N, 2), each snapped to the nearest member point -> (k, 2).

    Snapping keeps every sample inside its region, which k-means centres of a non-convex region
    (a bent arm) need not be. Deterministic for a given ``seed``.
    """
    coords = np.asarray(coords, dtype=np.float64)
    k = min(k, len(coords))
    rng = np.random.default_rng(seed)
    # k-means++ seeding: spread start points apart so few iterations suffice
    centres = [coords[rng.integers(len(coords))]]
    d2 = ((coords - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        centres.append(coords[rng.choice(len(coords), p=d2 / d2.sum())] if d2.sum() > 0 else coords[0])
        d2 = np.minimum(d2, ((coords - centres[-1]) ** 2).sum(1))
    centres = np.stack(centres)
    for _ in range(iters):
        assign = ((coords[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)  # (N,)
        counts = np.bincount(assign, minlength=k)
        sums = np.stack([np.bincount(assign, coords[:, d], minlength=k) for d in range(2)], 1)
        new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)
        if np.allclose(new, centres):
            break
        centres = new
    nearest = ((coords[None, :, :] - centres[:, None, :]) ** 2).sum(-1).argmin(1)  # (k,)
    return coords[nearest]


def sample_part_points(labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points to annotate in a (256, 256) part label map (values 0..14).

    Returns ``xy`` (P, 2) float in 0..256 box coordinates (pixel centres) and ``part`` (P,) int64
    in 1..14; up to ``MAX_POINTS_PER_PART`` per part, about one per ``PIXELS_PER_POINT`` pixels.
    """
    xys, parts = [], []
    for k in range(1, NUM_MASK_PARTS + 1):
        ys, xs = np.nonzero(labels == k)
        if len(xs) < MIN_PART_PIXELS:
            continue
        n = int(np.clip(round(len(xs) / PIXELS_PER_POINT), 1, MAX_POINTS_PER_PART))
        pts = kmeans_points(np.stack([xs, ys], 1) + 0.5, n, seed=seed + k)
        xys.append(pts)
        parts.append(np.full(len(pts), k, dtype=np.int64))
    if not xys:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    return np.concatenate(xys), np.concatenate(parts)
