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


def kmeans_pixels(rng: np.random.Generator, xy: np.ndarray, label: np.ndarray, k: np.ndarray, iters: int = 4,
                  samples_per_centre: int = 20) -> np.ndarray:
    """k-means in several regions at once: indices of pixels near the centres (roughly equidistant points).

    Args:
        xy: (N, 2) pixel coordinates; label: (N,) region 0..R-1 of each pixel, sorted ascending;
        k: (R,) centres per region (0 skips the region).
    Returns: indices into ``xy`` of the chosen pixels, grouped by region (<= k[r] per region).

    Each region is evenly subsampled (<= samples_per_centre * k points); centres start at
    farthest points, then Lloyd iterations; each centre snaps to the nearest sampled pixel,
    so every point is a real pixel of its region (centres of curved regions may lie outside).
    """
    R = len(k)
    bounds = np.searchsorted(label, np.arange(R + 1))
    sizes = np.diff(bounds)
    k = np.minimum(k, sizes)
    m = np.minimum(sizes, samples_per_centre * k)
    M, K = int(m.max(initial=0)), int(k.max(initial=0))
    if K == 0:
        return np.zeros(0, dtype=np.int64)
    # (R, M) sample indices: a random-offset stride over each region's pixels (raster order -> even spread).
    slot = np.arange(M)
    step = sizes / np.maximum(m, 1)
    offset = rng.uniform(0, 1, R) * step
    sub = bounds[:R, None] + np.minimum((offset[:, None] + slot * step[:, None]).astype(np.int64), sizes[:, None] - 1)
    valid = slot < m[:, None]
    sub = np.where(valid, sub, bounds[:R, None].clip(max=max(len(xy) - 1, 0)))
    far = 1e7  # padding samples sit far away: never nearest to a live centre
    px = np.where(valid, xy[sub, 0], far).astype(np.float64)
    py = np.where(valid, xy[sub, 1], far).astype(np.float64)
    rows = np.arange(R)
    # Farthest-point initialisation from each region's first sample.
    first = np.zeros((R, K), dtype=np.int64)
    dist = np.where(valid, (px - px[:, :1]) ** 2 + (py - py[:, :1]) ** 2, -1.0)
    for j in range(1, K):
        first[:, j] = np.argmax(dist, axis=1)
        cxj, cyj = px[rows, first[:, j]], py[rows, first[:, j]]
        dist = np.where(valid, np.minimum(dist, (px - cxj[:, None]) ** 2 + (py - cyj[:, None]) ** 2), -1.0)
    cx, cy = px[rows[:, None], first], py[rows[:, None], first]
    live = np.arange(K) < k[:, None]  # (R, K) centres in use
    big = 1e18
    for _ in range(iters):
        d = (px[:, :, None] - cx[:, None, :]) ** 2 + (py[:, :, None] - cy[:, None, :]) ** 2
        d = np.where(live[:, None, :], d, big)
        assign = d.argmin(axis=2)  # (R, M)
        key = (rows[:, None] * K + assign)[valid]
        counts = np.bincount(key, minlength=R * K).reshape(R, K)
        sx = np.bincount(key, weights=px[valid], minlength=R * K).reshape(R, K)
        sy = np.bincount(key, weights=py[valid], minlength=R * K).reshape(R, K)
        ok = counts > 0
        cx = np.where(ok, sx / np.maximum(counts, 1), cx)
        cy = np.where(ok, sy / np.maximum(counts, 1), cy)
    d = (px[:, :, None] - cx[:, None, :]) ** 2 + (py[:, :, None] - cy[:, None, :]) ** 2
    d = np.where(valid[:, :, None], d, big)
    nearest = d.argmin(axis=1)  # (R, K) sample slot nearest to each centre
    chosen = sub[rows[:, None], nearest][live]
    region = np.broadcast_to(rows[:, None], (R, K))[live]
    # Drop duplicates (two centres snapping to one pixel), keep region grouping.
    _, first_idx = np.unique(chosen, return_index=True)
    keep = np.sort(first_idx)
    order = np.lexsort((chosen[keep], region[keep]))
    return chosen[keep][order]


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

    # dp points: k-means per coarse part, points allocated by visible area, capped per part; pixels
    # of the person without a body surface under them (far clothing, hair) get no point.
    py, px = np.nonzero(parts)
    pp = parts[py, px]
    order = np.argsort(pp, kind="stable")  # group pixels by part, raster order inside
    py, px, pp = py[order], px[order], pp[order]
    count = np.bincount(pp, minlength=NUM_MASK_PARTS + 1)[1:]
    k = np.where(count > 0, np.clip(np.round(POINTS_PER_PERSON * count / max(len(pp), 1)), 1, MAX_POINTS_PER_PART), 0)
    chosen = kmeans_pixels(rng, np.column_stack([px, py]), pp - 1, k.astype(np.int64))
    cy, cx = py[chosen], px[chosen]
    gy, gx = cy + y0, cx + x0
    ann["dp_x"] = np.round((cx + 0.5) * DP_MASK_SIZE / bw, 3).tolist()
    ann["dp_y"] = np.round((cy + 0.5) * DP_MASK_SIZE / bh, 3).tolist()
    ann["dp_I"] = I[gy, gx].astype(np.float64).tolist()
    ann["dp_U"] = U[gy, gx].astype(np.float64).tolist()
    ann["dp_V"] = V[gy, gx].astype(np.float64).tolist()
    return ann
