"""Step 2's points: roughly equidistant samples of each painted part.

The sampler is the synthetic-data writer's (``densepose.synth.groundtruth.kmeans_pixels``, k-means
over the part's pixels, each centre snapped to a pixel of the part), with the same allocation:
about ``POINTS_PER_PERSON`` points shared by area, at least one and at most
``MAX_POINTS_PER_PART`` per part. So annotated and synthetic data carry points alike.
"""
from __future__ import annotations

import numpy as np

from densepose.surface.parts import NUM_MASK_PARTS
from densepose.synth.groundtruth import MAX_POINTS_PER_PART, POINTS_PER_PERSON, kmeans_pixels

MIN_PART_PIXELS = 10  # a stray brush speck gets no point


def sample_part_points(labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points to annotate in a (256, 256) part label map (values 0..14).

    Returns ``xy`` (P, 2) float at pixel centres in 0..256 box coordinates and ``part`` (P,)
    int64 in 1..14. Deterministic for a given ``seed``.
    """
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels.ravel(), minlength=NUM_MASK_PARTS + 1)[1:]
    counts = np.where(counts >= MIN_PART_PIXELS, counts, 0)
    if counts.sum() == 0:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    k = np.where(counts > 0, np.clip(np.round(POINTS_PER_PERSON * counts / counts.sum()), 1, MAX_POINTS_PER_PART), 0)
    ys, xs = np.nonzero(labels)  # raster order, which the sampler's even subsampling relies on
    region = labels[ys, xs].astype(np.int64) - 1
    order = np.argsort(region, kind="stable")  # grouped by part, raster order inside each
    xy, region = np.stack([xs, ys], 1)[order], region[order]
    chosen = kmeans_pixels(rng, xy, region, k.astype(np.int64))
    return xy[chosen].astype(np.float64) + 0.5, region[chosen] + 1
