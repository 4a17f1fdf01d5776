"""A straightforward pair-by-pair implementation of the DensePose protocol: the benchmark's baseline.

It computes what the official evaluator computes, the way it computes it, written from the
protocol (docs/EVALUATION.md), without our batching: for every mode separately, per image the GT
masks (union of the 14 ``dp_masks``, ``scipy.ndimage.zoom(order=1) > 0.5``, pasted in the image)
and the detection masks, then pycocotools' IoU (GPSm and IOU modes); per (detection, GT) pair the
GT points' pixels in the detection, the nearest chart vertex in UV of every GT and predicted
point by ``scipy.spatial.distance.cdist`` against the part's chart vertices (GT points are
snapped again for every pair, as the reference does), the geodesic distances and the score.
Only the geodesics come from the surface's tables (the official file is a 27,554-vertex
distance matrix). ``time_reference`` checks that its GPS equals the evaluator's.
"""
from __future__ import annotations

import time

import numpy as np
from pycocotools import mask as mask_utils
from scipy.ndimage import zoom
from scipy.spatial.distance import cdist

from densepose.data.rle import decode_dp_masks


_PARTS: dict = {}


def _part_vertices(surface) -> list:
    """Per part, the UV (M, 2) and mesh vertex (M,) of its chart vertices (built once, as the
    reference does when it loads its files)."""
    if id(surface) not in _PARTS:
        _PARTS[id(surface)] = [None] + [
            (surface.chart_uv[ids], surface.chart_vertex_mesh[ids])
            for ids in (np.flatnonzero(surface.chart_vertex_part == part) for part in range(1, 25))]
    return _PARTS[id(surface)]


def _snap(surface, I: np.ndarray, U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Mesh vertex of each point (-1 for I = 0): the nearest chart vertex of its part, by cdist."""
    out = np.full(len(I), -1, dtype=np.int64)
    parts = _part_vertices(surface)
    for part in range(1, 25):
        sel = I == part
        if not sel.any():
            continue
        uv, mesh = parts[part]
        out[sel] = mesh[np.argmin(cdist(uv, np.stack([U[sel], V[sel]], 1)), axis=0)]
    return out


def pair_gps(surface, kappa: np.ndarray, gt: dict, det_box, iuv: np.ndarray) -> float:
    """GPS of one (detection, GT) pair, the reference's way."""
    x, y, w, h = (float(v) for v in gt["bbox"])
    dh, dw = int(det_box[3]), int(det_box[2])
    px = (np.array(gt["dp_x"]) * w / 255.0 + x - det_box[0]).astype(int)
    py = (np.array(gt["dp_y"]) * h / 255.0 + y - det_box[1]).astype(int)
    outside = (px < 0) | (py < 0) | (px >= dw) | (py >= dh)
    if outside.all():
        return 0.0
    px[outside], py[outside] = 0, 0
    pI = iuv[0, py, px].astype(np.int64)
    pI[outside] = 0
    gI = np.array(gt["dp_I"]).astype(np.int64)
    gv = _snap(surface, gI, np.array(gt["dp_U"]), np.array(gt["dp_V"]))
    pv = _snap(surface, pI, iuv[1, py, px] / 255.0, iuv[2, py, px] / 255.0)
    ok = pv >= 0
    dist = np.full(len(gv), np.inf)
    dist[ok] = surface.geodesics.between_vertices(gv[ok], pv[ok])
    return float(np.mean(np.exp(-dist ** 2 / (2 * kappa[gI] ** 2))))


def _paste(mask: np.ndarray | None, box, im_h: int, im_w: int) -> dict:
    canvas = np.zeros((im_h, im_w), dtype=np.uint8, order="F")
    if mask is not None:
        x, y, w, h = box
        x0, y0 = max(int(x), 0), max(int(y), 0)
        x1 = min(int(x + w), im_w, int(x) + mask.shape[1])
        y1 = min(int(y + h), im_h, int(y) + mask.shape[0])
        canvas[y0:y1, x0:x1] = mask[y0 - int(y) : y1 - int(y), x0 - int(x) : x1 - int(x)]
    return mask_utils.encode(canvas)


def image_mask_ious(gts: list[dict], dets: list, im_h: int, im_w: int) -> np.ndarray:
    """(D, G) mask IoU of an image, the reference's way (masks built per image and mode)."""
    gmasks = []
    for g in gts:
        union = np.minimum(decode_dp_masks(g["dp_masks"]), 1).astype(np.float64)
        w, h = g["bbox"][2], g["bbox"][3]
        m = zoom(union, (max(h, 1) / union.shape[0], max(w, 1) / union.shape[1]), order=1, prefilter=False) > 0.5
        gmasks.append(_paste(m.astype(np.uint8), g["bbox"], im_h, im_w))
    dmasks = [_paste((d.iuv[0] > 0).astype(np.uint8), d.bbox, im_h, im_w) for d in dets]
    return np.asarray(mask_utils.iou(dmasks, gmasks, [int(g.get("iscrowd", 0)) for g in gts]))


def time_reference(surface, gt: dict, dets: list, max_pairs: int, kappa: np.ndarray, check=None) -> dict:
    """Time the baseline on the first images of a synthetic set until ``max_pairs`` pairs.

    Args:
        gt: the COCO dict; dets: ``SyntheticDetection`` list; kappa: (25,) per chart.
        check: optional ``(image_id, det index, GT id) -> GPS`` of the evaluator, compared pair by pair.
    Returns:
        pairs, seconds per pair for all three modes (3 GPS passes + 2 mask passes), and the parts.
    """
    by_image: dict[int, list] = {}
    for k, d in enumerate(dets):
        by_image.setdefault(d.image_id, []).append((k, d))
    images = {im["id"]: im for im in gt["images"]}
    t_gps = t_mask = 0.0
    pairs = 0
    worst = 0.0
    for image_id in sorted(by_image):
        gts = [a for a in gt["annotations"] if a["image_id"] == image_id and "dp_x" in a]
        ds = sorted(by_image[image_id], key=lambda kd: -kd[1].score)[:20]
        if not gts:
            continue
        t = time.perf_counter()
        image_mask_ious(gts, [d for _, d in ds], images[image_id]["height"], images[image_id]["width"])
        t_mask += time.perf_counter() - t
        t = time.perf_counter()
        values = {(k, g["id"]): pair_gps(surface, kappa, g, d.bbox, d.iuv) for k, d in ds for g in gts}
        t_gps += time.perf_counter() - t
        if check is not None:
            worst = max(worst, max(abs(v - check(image_id, k, gid)) for (k, gid), v in values.items()))
        pairs += len(values)
        if pairs >= max_pairs:
            break
    return {"pairs": pairs, "s_per_pair": (3 * t_gps + 2 * t_mask) / pairs, "gps_s_per_pair": t_gps / pairs,
            "mask_s_per_pair_and_mode": t_mask / pairs, "max_gps_difference": worst}
