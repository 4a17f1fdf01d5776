"""DensePose-COCO annotation of one rendered person, exactly in the dataset's format.

Box, area and RLE come from the visible mask; keypoints carry COCO visibility from the depth
buffer; ``dp_masks`` are the 14 coarse parts resampled to 256x256 in the box; the ``dp_*``
points are spread over each visible part with k-means, as the paper's annotation tool did, and
sit at pixel centres so that each point's (I, U, V) is the dense map at its pixel.
"""
from __future__ import annotations

import numpy as np

from densepose.data.rle import DP_MASK_SIZE, encode_dp_masks, encode_mask
from densepose.surface.parts import CHART_TO_MASK_PART, NUM_MASK_PARTS
from densepose.synth.raster import project

POINTS_PER_PERSON = 100   # target over all parts, allocated by visible area
MAX_POINTS_PER_PART = 14
KEYPOINT_DEPTH_TOLERANCE = 0.2  # metres: a joint centre lies inside the body, behind its surface


def kmeans_pixels(rng: np.random.Generator, xy: np.ndarray, k: int, iters: int = 4, samples_per_centre: int = 20) -> np.ndarray:
    """Indices (<= k,) of pixels of ``xy`` (N, 2) near the k-means centres: roughly equidistant points.

    Runs on an even subsample; each centre snaps to the nearest sampled pixel, so every
    returned point is a real pixel of the region (centres of curved regions may lie outside).
    """
    n = len(xy)
    m = samples_per_centre * k
    # A random-offset stride over the pixels (in raster order) is an even spatial subsample.
    sub = np.arange(n) if n <= m else (rng.uniform(0, n / m) + np.arange(m) * (n / m)).astype(np.int64)
    px = xy[sub, 0].astype(np.float64)
    py = xy[sub, 1].astype(np.float64)
    k = min(k, len(px))
    # Farthest-point initialisation from the first sample: deterministic and well spread.
    first = np.zeros(k, dtype=np.int64)
    dist = (px - px[0]) ** 2 + (py - py[0]) ** 2
    for j in range(1, k):
        first[j] = np.argmax(dist)
        dist = np.minimum(dist, (px - px[first[j]]) ** 2 + (py - py[first[j]]) ** 2)
    cx, cy = px[first], py[first]
    for _ in range(iters):
        assign = ((px[:, None] - cx) ** 2 + (py[:, None] - cy) ** 2).argmin(1)
        counts = np.bincount(assign, minlength=k)
        ok = counts > 0
        cx = np.where(ok, np.bincount(assign, weights=px, minlength=k) / np.maximum(counts, 1), cx)
        cy = np.where(ok, np.bincount(assign, weights=py, minlength=k) / np.maximum(counts, 1), cy)
    nearest = ((px[:, None] - cx) ** 2 + (py[:, None] - cy) ** 2).argmin(0)
    return sub[np.unique(nearest)]


def keypoints_with_visibility(kp_cam: np.ndarray, K: np.ndarray, instance: np.ndarray, depth: np.ndarray,
                              inst_id: int) -> list[float]:
    """17 camera-space joints -> COCO [x, y, v] * 17.

    v = 2: inside the image, on this person's mask and not behind a nearer surface;
    v = 1: inside the image but occluded; v = 0: outside the image (x = y = 0).
    """
    H, W = instance.shape
    xy = np.round(project(kp_cam, K), 2)
    out: list[float] = []
    for (x, y), z in zip(xy, kp_cam[:, 2]):
        if z <= 0 or not (0 <= x < W and 0 <= y < H):
            out += [0.0, 0.0, 0]
            continue
        r, c = int(y), int(x)
        visible = instance[r, c] == inst_id and depth[r, c] > z - KEYPOINT_DEPTH_TOLERANCE
        out += [float(x), float(y), 2 if visible else 1]
    return out


def person_annotation(
    rng: np.random.Generator,
    mask: np.ndarray,
    I: np.ndarray,
    U: np.ndarray,
    V: np.ndarray,
    depth: np.ndarray,
    kp_cam: np.ndarray,
    K: np.ndarray,
    inst_id: int,
    instance: np.ndarray,
    min_dp_pixels: int,
) -> dict:
    """COCO + DensePose fields of one person (no ids).

    Args:
        mask: (H, W) bool visible pixels of the person. I, U, V: dense maps (H, W).
        depth: (H, W) z-buffer; kp_cam: (17, 3) keypoints in camera space; K: (3, 3).
        min_dp_pixels: fewer visible pixels than this -> no dp_* fields (like small people
            in DensePose-COCO).
    """
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    bw, bh = x1 - x0, y1 - y0
    kps = keypoints_with_visibility(kp_cam, K, instance, depth, inst_id)
    ann = {
        "category_id": 1,
        "iscrowd": 0,
        "bbox": [float(x0), float(y0), float(bw), float(bh)],
        "area": float(len(xs)),
        "segmentation": encode_mask(mask),
        "keypoints": kps,
        "num_keypoints": int(sum(1 for v in kps[2::3] if v > 0)),
    }
    if len(xs) < min_dp_pixels:
        return ann

    crop_mask = mask[y0:y1, x0:x1]
    parts = CHART_TO_MASK_PART[I[y0:y1, x0:x1]] * crop_mask
    # dp_masks: nearest-neighbour resample of the box to 256x256 at cell centres.
    rows = np.minimum(((np.arange(DP_MASK_SIZE) + 0.5) * bh / DP_MASK_SIZE).astype(np.int64), bh - 1)
    cols = np.minimum(((np.arange(DP_MASK_SIZE) + 0.5) * bw / DP_MASK_SIZE).astype(np.int64), bw - 1)
    ann["dp_masks"] = encode_dp_masks(parts[np.ix_(rows, cols)].astype(np.uint8))

    # dp points: k-means per coarse part, points allocated by visible area, capped per part.
    py, px = np.nonzero(crop_mask)
    pp = parts[py, px]
    total = len(pp)
    sel_y, sel_x = [], []
    order = np.argsort(pp, kind="stable")
    bounds = np.searchsorted(pp[order], np.arange(1, NUM_MASK_PARTS + 2))
    for p in range(NUM_MASK_PARTS):
        idx = order[bounds[p]:bounds[p + 1]]
        if len(idx) == 0:
            continue
        k = int(np.clip(round(POINTS_PER_PERSON * len(idx) / total), 1, MAX_POINTS_PER_PART))
        chosen = idx[kmeans_pixels(rng, np.column_stack([px[idx], py[idx]]), k)]
        sel_y.append(py[chosen])
        sel_x.append(px[chosen])
    cy = np.concatenate(sel_y)
    cx = np.concatenate(sel_x)
    gy, gx = cy + y0, cx + x0
    ann["dp_x"] = np.round((cx + 0.5) * DP_MASK_SIZE / bw, 3).tolist()
    ann["dp_y"] = np.round((cy + 0.5) * DP_MASK_SIZE / bh, 3).tolist()
    ann["dp_I"] = I[gy, gx].astype(np.float64).tolist()
    ann["dp_U"] = U[gy, gx].astype(np.float64).tolist()
    ann["dp_V"] = V[gy, gx].astype(np.float64).tolist()
    return ann
