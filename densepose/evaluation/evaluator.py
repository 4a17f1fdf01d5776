"""The DensePose evaluator: GPS, GPSm and IOU AP in one pass, the paper's pointwise curve, COCO AP.

Protocol (the official detectron2 ``DensePoseCocoEval``; see docs/ARCHITECTURE.md and
densepose_reference.md §3), computed once per (detection, ground truth) pair and shared by the
three modes:

- GPS: each GT point goes to pixel ``int(dp_x * w_gt / 255 + x_gt - x_dt)`` (likewise y) of the
  detection's IUV array; points outside the detection box, or where it predicts background, score
  0; GT and predicted (I, U, V) become mesh vertices by the official snap (nearest chart vertex in
  UV; or exact surface points with ``exact=True``); GPS is the mean over GT points of
  ``exp(-g^2 / (2 kappa^2))`` with g the geodesic distance and kappa that of the GT chart.
- IoU: the GT mask (union of the 14 ``dp_masks`` zoomed bilinearly to the box and thresholded at
  0.5; else the COCO segmentation) against the detection's foreground (I > 0), both pasted at the
  integer box.
- GPSm = sqrt(GPS * IoU); IOU mode uses the IoU alone.

Speed (docs/EVALUATION.md): GT points are snapped once per GT, predictions by a lookup in
``BodySurface.snap_table()``; each detection's IUV is decoded once; all points of a chunk of images
are gathered in one go and their geodesics come from one call; GT masks use an exact NumPy
replacement of scipy's zoom and are built only where a detection meets them; matching runs for
all images in padded batches. Nothing is n x n.
"""
from __future__ import annotations

import contextlib
import copy
import io
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from densepose.data.coco import CocoDensePose, has_densepose, load_coco, parse_coco
from pycocotools import mask as mask_utils

from densepose.data.rle import DP_MASK_SIZE, decode_mask
from densepose.errors import UserError
from densepose.evaluation.matching import (
    AREA_RANGES,
    MAX_DETS,
    accumulate,
    box_iou_xywh,
    match_images,
    summarize,
)
from densepose.evaluation.masks import zoom_mask, zoom_shape
from densepose.evaluation.results import Detections, load_results
from densepose.surface.parts import NUM_CHARTS

MODES = ("gps", "gpsm", "iou")
#: Pointwise curve: geodesic error thresholds in cm (fine grid, for the AUCs and the plot).
CURVE_STEP_CM = 0.05
CURVE_MAX_CM = 30.0
_HIST_EDGES_CM = np.arange(0.0, CURVE_MAX_CM + CURVE_STEP_CM / 2, CURVE_STEP_CM)


@dataclass
class _Cell:
    """One image and category: its ground truth, its top detections and their pairwise scores."""

    image_id: int
    category_id: int
    height: int
    width: int
    gts: list[dict]
    dets: np.ndarray  # (D,) indices into the Detections, sorted by score
    gps: np.ndarray = None  # (D, G)
    mask_iou: np.ndarray = None  # (D, G)
    box_iou: np.ndarray = None  # (D, G)


@dataclass
class _Chunk:
    """Points gathered from several cells, scored together by one snap and one geodesic call."""

    gt_I: list = field(default_factory=list)
    gt_uv: list = field(default_factory=list)
    gt_kappa: list = field(default_factory=list)
    n_gt_points: int = 0
    pair_cell: list = field(default_factory=list)  # per pair: (cell, d, g, number of GT points)
    pt_pair: list = field(default_factory=list)  # per gathered point: pair index
    pt_gt: list = field(default_factory=list)  # per gathered point: GT point index in the chunk
    pt_code: list = field(default_factory=list)  # per gathered point: I << 16 | U8 << 8 | V8
    selected_pairs: list = field(default_factory=list)  # pairs used by the pointwise curve
    n_points: int = 0


def evaluate(gt, results, surface, kappa: str = "per-part", exact: bool = False, *,
             gt_boxes: bool = False, pointwise_min_iou: float = 0.5, coco_metrics: bool = True,
             progress: bool = False, chunk_points: int = 1 << 20) -> dict:
    """Evaluate DensePose results against DensePose-COCO ground truth.

    Args:
        gt: annotations path, parsed COCO dict, or ``CocoDensePose``.
        results: results path (``.json`` or ``.npz``), list of result records, or ``Detections``.
        surface: a ``BodySurface`` or a surface name for ``densepose.surface.load_surface``.
        kappa: "per-part" (official protocol) or "paper" (0.255 for every part).
        exact: exact surface points instead of the official vertex snap.
        gt_boxes: results were produced on the GT boxes; the pointwise curve then pairs each GT
            with the detection on its box (box IoU >= 0.99) instead of IoU >= ``pointwise_min_iou``.
        coco_metrics: also compute box / mask / keypoint AP with pycocotools where possible.
        progress: show a tqdm bar.
        chunk_points: bound on gathered points per chunk (memory).
    Returns:
        dict with ``densepose`` ({mode: {AP, AP50, ...}}), ``pointwise``, ``coco``, ``counts``,
        ``warnings`` (counted), ``settings``; values are fractions in [0, 1] (-1: undefined).
    """
    if kappa not in ("per-part", "paper"):
        raise UserError(f"--kappa must be 'per-part' or 'paper', got {kappa!r}")
    coco = _load_gt(gt)
    dets = load_results(results)
    surface = _load_surface(surface)
    warnings: Counter = Counter()

    known = np.array(sorted(coco.images), dtype=np.int64)
    unknown = np.flatnonzero(~np.isin(dets.image_id, known))
    if len(unknown):
        k = int(unknown[0])
        raise UserError(f"{dets.where(k)}: image_id {int(dets.image_id[k])} is not in the ground truth "
                        f"({len(unknown)} such result(s))")
    cat_ids = sorted({int(c["id"]) for c in coco.categories if isinstance(c, dict) and "id" in c})
    if not cat_ids:
        cat_ids = sorted({int(a.get("category_id", 1)) for anns in coco.annotations.values() for a in anns}) or [1]
    off_cat = int(np.count_nonzero(~np.isin(dets.category_id, cat_ids)))
    if off_cat:
        warnings["detections with a category not in the ground truth (not evaluated)"] += off_cat

    cells = _make_cells(coco, dets, cat_ids, warnings)
    out: dict = {
        "settings": {"surface": getattr(surface, "name", None), "kappa": kappa, "exact": bool(exact),
                     "max_dets": MAX_DETS, "gt_boxes": bool(gt_boxes)},
        "counts": {
            "images": len(coco.images),
            "gt": sum(len(a) for a in coco.annotations.values()),
            "gt_densepose": sum(has_densepose(a) for anns in coco.annotations.values() for a in anns),
            "detections": len(dets),
            "detections_evaluated": int(sum(len(c.dets) for c in cells)),
        },
    }
    if dets.has_densepose:
        scorer = _PairScorer(surface, kappa, exact, dets, pointwise_min_iou=0.99 if gt_boxes else pointwise_min_iou,
                             chunk_points=chunk_points, warnings=warnings)
        scorer.run(cells, progress=progress)
        t0 = time.perf_counter()
        out["densepose"] = _summaries(cells, dets, cat_ids)
        scorer.timing["matching"] += time.perf_counter() - t0
        out["timing_s"] = {k: round(v, 4) for k, v in scorer.timing.items()}
        out["pointwise"] = scorer.pointwise()
        out["counts"]["pairs"] = scorer.num_pairs
        out["counts"]["pairs_overlapping"] = scorer.num_pairs_overlapping
        out["counts"]["points"] = scorer.num_points_scored
    else:
        warnings["results carry no uv_data: DensePose metrics skipped"] += 1
    if coco_metrics:
        out["coco"] = coco_ap(coco, dets, warnings)
    out["warnings"] = dict(warnings)
    return out


# ---------------------------------------------------------------------------------------- setup
def _load_gt(gt) -> CocoDensePose:
    if isinstance(gt, CocoDensePose):
        return gt
    if isinstance(gt, dict):
        return parse_coco(gt)
    return load_coco(gt)


def _load_surface(surface):
    if isinstance(surface, str):
        from densepose.surface import load_surface  # the surface package is heavy; import on demand

        return load_surface(surface)
    return surface


def _make_cells(coco: CocoDensePose, dets: Detections, cat_ids: list[int], warnings: Counter) -> list[_Cell]:
    """Group detections by (image, category), stable-sorted by score and cut at 20, as the reference."""
    order = np.lexsort((np.arange(len(dets)), -dets.score, dets.category_id, dets.image_id))
    keys = np.stack([dets.image_id[order], dets.category_id[order]], axis=1)
    groups: dict[tuple[int, int], np.ndarray] = {}
    if len(order):
        starts = np.flatnonzero(np.r_[True, (keys[1:] != keys[:-1]).any(axis=1)])
        for s, e in zip(starts, np.r_[starts[1:], len(order)]):
            groups[(int(keys[s, 0]), int(keys[s, 1]))] = order[s:e]
    cells = []
    dropped = 0
    for image_id in sorted(coco.images):
        img = coco.images[image_id]
        anns = coco.annotations.get(image_id, [])
        for cat in cat_ids:
            gts = [a for a in anns if int(a.get("category_id", 1)) == cat]
            d = groups.get((image_id, cat), np.zeros(0, dtype=np.int64))
            dropped += max(len(d) - MAX_DETS, 0)
            if not gts and not len(d):
                continue
            for a in gts:
                if "area" not in a:
                    warnings["ground truth without 'area' (box area used)"] += 1
            cells.append(_Cell(image_id, cat, int(img["height"]), int(img["width"]), gts, d[:MAX_DETS]))
    if dropped:
        warnings[f"detections beyond the top {MAX_DETS} of their image (not evaluated, as the protocol)"] += dropped
    return cells


def _gt_area(a: dict) -> float:
    return float(a["area"]) if "area" in a else float(a["bbox"][2]) * float(a["bbox"][3])


# ---------------------------------------------------------------------------------------- masks
def _paste(mask: np.ndarray, box, im_h: int, im_w: int) -> tuple[int, int, np.ndarray]:
    """Paste a box-sized mask at the integer box, clipped to the image, as the reference does.

    Returns (y0, x0, crop bool) with the crop's top-left corner in image pixels.
    """
    x, y, w, h = (float(v) for v in box)
    xi, yi = int(x), int(y)
    x0, y0 = max(xi, 0), max(yi, 0)
    x1 = min(int(x + w), im_w, xi + mask.shape[1])
    y1 = min(int(y + h), im_h, yi + mask.shape[0])
    if x1 <= x0 or y1 <= y0:
        return 0, 0, np.zeros((0, 0), dtype=bool)
    return y0, x0, mask[y0 - yi : y1 - yi, x0 - xi : x1 - xi] > 0


def _gt_mask(a: dict, im_h: int, im_w: int, where: str, extent=None) -> tuple[int, int, np.ndarray]:
    """GT person mask: union of dp_masks zoomed to the box (threshold 0.5), else the segmentation.

    ``extent``: the segmentation's foreground xywh (``_seg_extent``) when known, to crop without a scan.
    """
    if "dp_masks" in a:
        union = _dp_union(a["dp_masks"], where)
        _, _, w, h = (float(v) for v in a["bbox"])
        scale = (max(h, 1.0) / union.shape[0], max(w, 1.0) / union.shape[1])
        m = zoom_mask(union, *zoom_shape(union.shape, scale))  # == zoom(order=1, prefilter=False) > 0.5
        return _paste(m, a["bbox"], im_h, im_w)
    seg = a.get("segmentation")
    if seg and isinstance(seg, (list, dict)):
        try:
            if isinstance(seg, dict) and isinstance(seg.get("counts"), list):
                seg = {"size": [im_h, im_w], "counts": seg["counts"]}
            full = decode_mask(seg, im_h, im_w)
        except Exception as exc:  # pycocotools raises bare exceptions for corrupt RLE
            raise UserError(f"{where}: segmentation does not decode ({exc.__class__.__name__}: {exc})") from None
        if full.shape != (im_h, im_w):
            raise UserError(f"{where}: segmentation size {list(full.shape)} differs from the image size {[im_h, im_w]}")
        if extent is not None:  # any crop holding the whole foreground gives the same IoU
            x, y, w, h = (int(v) for v in extent)
            return (y, x, full[y : y + h, x : x + w] > 0) if w > 0 and h > 0 else (0, 0, np.zeros((0, 0), dtype=bool))
        rows, cols = np.flatnonzero(full.any(axis=1)), np.flatnonzero(full.any(axis=0))
        if not len(rows):
            return 0, 0, np.zeros((0, 0), dtype=bool)
        return int(rows[0]), int(cols[0]), full[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] > 0
    return 0, 0, np.zeros((0, 0), dtype=bool)


def _paste_region(box, im_h: int, im_w: int, hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """(y0, x0, y1, x1) image pixels that ``_paste`` covers for an (h, w) mask at ``box``; None if none."""
    x, y, w, h = (float(v) for v in box)
    xi, yi = int(x), int(y)
    x0, y0 = max(xi, 0), max(yi, 0)
    x1 = min(int(x + w), im_w, xi + int(hw[1]))
    y1 = min(int(y + h), im_h, yi + int(hw[0]))
    return (y0, x0, y1, x1) if x1 > x0 and y1 > y0 else None


def _seg_extent(a: dict, im_h: int, im_w: int):
    """xywh extent of a GT's segmentation foreground, read from the RLE without decoding it.

    None when there is no usable segmentation or it needs ``_gt_mask``'s full checks (its errors).
    """
    seg = a.get("segmentation")
    if not seg or not isinstance(seg, (list, dict)):
        return None
    try:
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, im_h, im_w))
        elif isinstance(seg.get("counts"), list):
            rle = mask_utils.frPyObjects({"size": [im_h, im_w], "counts": seg["counts"]}, im_h, im_w)
        elif [int(v) for v in seg.get("size", ())] == [im_h, im_w]:
            counts = seg["counts"]
            rle = {"size": [im_h, im_w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        else:
            return None
        return [float(v) for v in mask_utils.toBbox(rle)]
    except Exception:  # let _gt_mask report it
        return None


def _overlaps(region: tuple[int, int, int, int], box) -> bool:
    """Does the pixel region (y0, x0, y1, x1) meet the integer box of an xywh ``box``?"""
    x, y, w, h = (float(v) for v in box)
    bx0, by0, bx1, by1 = int(x), int(y), int(x + w), int(y + h)
    return region[0] < by1 and by0 < region[2] and region[1] < bx1 and bx0 < region[3]


def _dp_union(dp_masks: list, where: str) -> np.ndarray:
    """The 14 ``dp_masks`` RLEs -> their union (256, 256) uint8 in {0, 1} (one merge, one decode)."""
    rles = [{"size": list(m["size"]), "counts": m["counts"].encode("ascii") if isinstance(m["counts"], str) else m["counts"]}
            for m in dp_masks if m]
    if not rles:
        return np.zeros((DP_MASK_SIZE, DP_MASK_SIZE), dtype=np.uint8)
    try:
        if any(isinstance(r["counts"], list) for r in rles):
            rles = [mask_utils.frPyObjects(r, *r["size"]) if isinstance(r["counts"], list) else r for r in rles]
        return mask_utils.decode(mask_utils.merge(rles, intersect=False))
    except Exception as exc:  # pycocotools raises bare exceptions for corrupt RLE
        raise UserError(f"{where}: dp_masks do not decode ({exc.__class__.__name__}: {exc})") from None


def _mask_iou(dt_masks: list, gt_masks: list, crowd: np.ndarray) -> np.ndarray:
    """(D, G) IoU of pasted masks (y0, x0, crop); crowd GT: intersection over the detection area."""
    out = np.zeros((len(dt_masks), len(gt_masks)))
    gt_area = [np.count_nonzero(m[2]) for m in gt_masks]
    for i, (dy, dx, dm) in enumerate(dt_masks):
        da = np.count_nonzero(dm)
        if not da:
            continue
        for j, (gy, gx, gm) in enumerate(gt_masks):
            y0, x0 = max(dy, gy), max(dx, gx)
            y1, x1 = min(dy + dm.shape[0], gy + gm.shape[0]), min(dx + dm.shape[1], gx + gm.shape[1])
            if y1 <= y0 or x1 <= x0 or not gt_area[j]:
                continue
            inter = np.count_nonzero(dm[y0 - dy : y1 - dy, x0 - dx : x1 - dx] & gm[y0 - gy : y1 - gy, x0 - gx : x1 - gx])
            union = da if crowd[j] else da + gt_area[j] - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


# ---------------------------------------------------------------------------------------- GPS
class _PairScorer:
    """Fills ``gps``, ``mask_iou`` and ``box_iou`` of every cell, and the pointwise histogram."""

    def __init__(self, surface, kappa: str, exact: bool, dets: Detections, pointwise_min_iou: float,
                 chunk_points: int, warnings: Counter):
        self.surface = surface
        self.kappa = np.asarray(surface.kappa_per_chart(kappa), dtype=np.float64)
        self.exact = exact
        self.dets = dets
        self.min_iou = pointwise_min_iou
        self.chunk_points = chunk_points
        self.warnings = warnings
        self.hist = np.zeros(len(_HIST_EDGES_CM), dtype=np.int64)  # hist[k]: error in (t[k-1], t[k]]
        self.pointwise_total = 0
        self.pointwise_gt = 0
        self.pointwise_matched = 0
        self.num_pairs = 0
        self.num_pairs_overlapping = 0  # pairs with at least one GT point inside the detection box
        self.num_points_scored = 0
        self.timing = Counter()  # seconds: decode, masks, gather, geodesic
        self._lut = None

    def run(self, cells: list[_Cell], progress: bool = False) -> None:
        from tqdm import tqdm

        chunk, pending = _Chunk(), []
        for cell in tqdm(cells, desc="evaluate", unit="img", disable=not progress, leave=False):
            self._prepare_cell(cell, chunk)
            pending.append(cell)
            if chunk.n_points >= self.chunk_points:
                self._score_chunk(chunk)
                chunk, pending = _Chunk(), []
        self._score_chunk(chunk)

    def _prepare_cell(self, cell: _Cell, chunk: _Chunk) -> None:
        dets, D, G = self.dets, len(cell.dets), len(cell.gts)
        cell.gps = np.zeros((D, G))
        cell.mask_iou = np.zeros((D, G))
        gt_box = np.array([[float(v) for v in a["bbox"]] for a in cell.gts]).reshape(G, 4)
        crowd = np.array([bool(a.get("iscrowd", 0)) for a in cell.gts], dtype=bool)
        cell.box_iou = box_iou_xywh(dets.bbox[cell.dets], gt_box, crowd)
        dp = [j for j, a in enumerate(cell.gts) if has_densepose(a)]
        self.pointwise_gt += len(dp)
        self.pointwise_total += sum(len(cell.gts[j]["dp_x"]) for j in dp)
        if D == 0 or G == 0:
            return
        t0 = time.perf_counter()
        iuvs = [dets.iuv(int(k)) for k in cell.dets]  # decoded once per detection
        t1 = time.perf_counter()
        self.timing["decode"] += t1 - t0

        # Mask IoU against every GT (ignored ones too: the IOU mode can match them). A pair whose
        # regions do not meet has IoU 0, so a mask is built only when it meets one of the other
        # side: a GT's dp_masks lie inside its integer box, a segmentation's extent is read from
        # its RLE without decoding the image (None: unknown, always built).
        where = f"ground truth of image {cell.image_id}"
        dt_reg = [_paste_region(dets.bbox[k], cell.height, cell.width, a.shape[1:]) for a, k in zip(iuvs, cell.dets)]
        extents = [a["bbox"] if "dp_masks" in a else _seg_extent(a, cell.height, cell.width) for a in cell.gts]
        meet = np.array([[r is not None and (e is None or _overlaps(r, e)) for e in extents] for r in dt_reg],
                        dtype=bool).reshape(D, G)
        empty = (0, 0, np.zeros((0, 0), dtype=bool))
        dt_masks = [_paste(a[0], dets.bbox[k], cell.height, cell.width) if meet[i].any() else empty
                    for i, (a, k) in enumerate(zip(iuvs, cell.dets))]
        gt_masks = [_gt_mask(a, cell.height, cell.width, f"{where} (annotation id {a.get('id')})",
                             None if "dp_masks" in a else extents[j]) if meet[:, j].any()
                    else empty for j, a in enumerate(cell.gts)]
        cell.mask_iou = _mask_iou(dt_masks, gt_masks, crowd)
        t2 = time.perf_counter()
        self.timing["masks"] += t2 - t1
        if not dp:
            return

        # GT points of this cell, in image pixels (the reference's /255 scaling), snapped later.
        gx, gy, gpt, npts = [], [], [], []
        for j in dp:
            a = cell.gts[j]
            x0, y0, w, h = (float(v) for v in a["bbox"])
            x = np.asarray(a["dp_x"], dtype=np.float64)
            y = np.asarray(a["dp_y"], dtype=np.float64)
            I = np.asarray(a["dp_I"], dtype=np.float64).round().astype(np.int64)
            gx.append(x * w / 255.0 + x0)
            gy.append(y * h / 255.0 + y0)
            gpt.append(chunk.n_gt_points + np.arange(len(x)))
            chunk.gt_I.append(I)
            chunk.gt_uv.append(np.stack([np.asarray(a["dp_U"], dtype=np.float64), np.asarray(a["dp_V"], dtype=np.float64)], 1))
            chunk.gt_kappa.append(self.kappa[I])
            chunk.n_gt_points += len(x)
            npts.append(len(x))
            if not len(x):
                self.warnings["DensePose ground truth with no points (GPS 0)"] += 1
        gx, gy, gpt = np.concatenate(gx), np.concatenate(gy), np.concatenate(gpt)
        gcol = np.repeat(np.arange(len(dp)), npts)  # (P,) which dp-GT each point belongs to

        # Every detection against every point at once: (D, P).
        box = dets.bbox[cell.dets]
        px = (gx[None, :] - box[:, 0:1]).astype(np.int64)  # truncation, like the reference's astype(int)
        py = (gy[None, :] - box[:, 1:2]).astype(np.int64)
        dw = np.trunc(box[:, 2:3]).astype(np.int64)
        dh = np.trunc(box[:, 3:4]).astype(np.int64)
        inside = (px >= 0) & (px < dw) & (py >= 0) & (py < dh)
        starts = np.r_[0, np.cumsum(npts)[:-1]][np.asarray(npts) > 0]
        if len(starts):
            self.num_pairs_overlapping += int(np.logical_or.reduceat(inside, starts, axis=1).sum())
        # Read each detection's array in place (no copy); most far detections have no point inside.
        parts_d, parts_p, parts_iuv = [], [], []
        for d in np.flatnonzero(inside.any(axis=1)):
            p = np.flatnonzero(inside[d])
            flat = iuvs[d].reshape(3, -1)
            vals = flat[:, py[d, p] * iuvs[d].shape[2] + px[d, p]]  # (3, n) I, U*255, V*255
            fg = vals[0] > 0
            parts_d.append(np.full(np.count_nonzero(fg), d, dtype=np.int64))
            parts_p.append(p[fg])
            parts_iuv.append(vals[:, fg].astype(np.int64))
        if parts_d:
            d_idx, p_idx = np.concatenate(parts_d), np.concatenate(parts_p)
            I, U, V = np.concatenate(parts_iuv, axis=1)
        else:
            d_idx = p_idx = I = U = V = np.zeros(0, dtype=np.int64)

        pair0 = len(chunk.pair_cell)
        for d in range(D):
            for c, j in enumerate(dp):
                chunk.pair_cell.append((cell, d, j, npts[c]))
        chunk.pt_pair.append(pair0 + d_idx * len(dp) + gcol[p_idx])
        chunk.pt_gt.append(gpt[p_idx])
        chunk.pt_code.append((I << 16) | (U << 8) | V)
        chunk.n_points += len(d_idx)

        # Pointwise curve: each DensePose GT takes the detection with the highest box IoU.
        for c, j in enumerate(dp):
            col = cell.box_iou[:, j]
            d = int(np.argmax(col))
            if col[d] >= self.min_iou:
                chunk.selected_pairs.append(pair0 + d * len(dp) + c)
                self.pointwise_matched += 1
        self.timing["gather"] += time.perf_counter() - t2

    def _score_chunk(self, chunk: _Chunk) -> None:
        if not chunk.pair_cell:
            return
        t0 = time.perf_counter()
        surf = self.surface
        n_pairs = len(chunk.pair_cell)
        self.num_pairs += n_pairs
        pt_pair = np.concatenate(chunk.pt_pair) if chunk.pt_pair else np.zeros(0, np.int64)
        pt_gt = np.concatenate(chunk.pt_gt) if chunk.pt_gt else np.zeros(0, np.int64)
        code = np.concatenate(chunk.pt_code) if chunk.pt_code else np.zeros(0, np.int64)
        score = np.zeros(0)
        dist = np.zeros(0)
        if len(code):
            gt_I = np.concatenate(chunk.gt_I)
            gt_uv = np.concatenate(chunk.gt_uv)
            kappa = np.concatenate(chunk.gt_kappa)
            used = np.unique(pt_gt)
            if self.exact:
                # Distinct predicted IUV values are few (uint8): resolve each once.
                uniq, inv = np.unique(code, return_inverse=True)
                pI = uniq >> 16
                puv = np.stack([(uniq >> 8) & 255, uniq & 255], 1) / 255.0
                gf = np.zeros(len(gt_I), np.int64)
                gb = np.zeros((len(gt_I), 3))
                gf[used], gb[used] = surf.points_from_iuv(gt_I[used], gt_uv[used])
                pf, pb = surf.points_from_iuv(pI, puv)
                dist = surf.geodesics.between_points(gf[pt_gt], gb[pt_gt], pf[inv], pb[inv])
            else:
                gv = np.zeros(len(gt_I), np.int64)
                gv[used] = surf.snap_to_mesh_vertex(gt_I[used], gt_uv[used])
                pv = self._snap_pred(code)
                if len(pv) and pv.min() < 0:
                    raise UserError(f"{self.dets.source}: predicted part I = {int(code[np.argmin(pv)] >> 16)} has no "
                                    f"chart vertices on surface {surf.name!r}")
                dist = surf.geodesics.between_vertices(gv[pt_gt], pv)
            k = kappa[pt_gt]
            score = np.exp(-(dist ** 2) / (2.0 * k ** 2))
            self.num_points_scored += len(dist)
        total = np.bincount(pt_pair, weights=score, minlength=n_pairs)
        for p, (cell, d, j, n) in enumerate(chunk.pair_cell):
            cell.gps[d, j] = total[p] / n if n else 0.0
        if chunk.selected_pairs and len(dist):
            sel = np.isin(pt_pair, np.asarray(chunk.selected_pairs))
            k = np.searchsorted(_HIST_EDGES_CM, dist[sel] * 100.0, side="left")
            self.hist += np.bincount(k[k < len(self.hist)], minlength=len(self.hist))
        self.timing["snap+geodesic"] += time.perf_counter() - t0

    def _snap_pred(self, code: np.ndarray) -> np.ndarray:
        """Mesh vertex (N,) of the official snap of predicted codes I << 16 | U8 << 8 | V8.

        A lookup in the surface's snap table when it is built (or worth building: more points than
        its 1.6 M entries); else the k-d tree on the distinct codes. Both give the same vertices.
        """
        if self.surface.snap_table(build=len(code) > (NUM_CHARTS << 16)) is not None:
            return self._snap_lut()[code]
        uniq, inv = np.unique(code, return_inverse=True)
        puv = np.stack([(uniq >> 8) & 255, uniq & 255], 1) / 255.0
        I = uniq >> 16
        out = np.full(len(uniq), -1, dtype=np.int64)
        known = np.isin(I, self.surface.chart_vertex_part)
        out[known] = self.surface.snap_to_mesh_vertex(I[known], puv[known])
        return out[inv]

    def _snap_lut(self) -> np.ndarray:
        """(25 << 16,) int64 mesh vertex of the official snap, indexed by the code I << 16 | U8 << 8 | V8."""
        if self._lut is None:
            table = self.surface.snap_table()  # (24, V8, U8)
            lut = np.zeros((1 + len(table)) << 16, dtype=np.int64)
            flat = table.transpose(0, 2, 1).reshape(-1)  # code order: I, then U8, then V8
            lut[1 << 16:] = np.where(flat >= 0, self.surface.chart_vertex_mesh[np.maximum(flat, 0)], -1)
            self._lut = lut
        return self._lut

    def pointwise(self) -> dict:
        """The paper's pointwise evaluation: ratio of GT points with geodesic error below t cm."""
        n = self.pointwise_total
        ratio = np.cumsum(self.hist) / max(n, 1)  # fraction of points with error <= t, at _HIST_EDGES_CM
        t = _HIST_EDGES_CM

        def auc(a: float) -> float:
            m = t <= a + 1e-9
            r, x = ratio[m], t[m]
            return float(np.sum((r[1:] + r[:-1]) * np.diff(x)) / 2.0 / a) if n else -1.0

        at = {f"{c:g}": float(ratio[int(round(c / CURVE_STEP_CM))]) if n else -1.0 for c in (1, 2, 5, 10, 15, 20, 30)}
        return {
            "auc10": auc(10.0), "auc30": auc(30.0), "ratio_at_cm": at,
            "num_points": int(n), "num_gt": int(self.pointwise_gt), "num_gt_matched": int(self.pointwise_matched),
            "min_box_iou": self.min_iou,
            "curve_cm": t[:: int(round(0.5 / CURVE_STEP_CM))].round(3).tolist(),
            "curve_ratio": ratio[:: int(round(0.5 / CURVE_STEP_CM))].round(6).tolist(),
        }


# ---------------------------------------------------------------------------------------- summary
def _summaries(cells: list[_Cell], dets: Detections, cat_ids: list[int]) -> dict:
    """Match every cell in the three modes and area ranges at once; the 10 numbers per mode."""
    cat_index = {c: k for k, c in enumerate(cat_ids)}
    areas = list(AREA_RANGES)
    evals = {(m, a): [[] for _ in cat_ids] for m in MODES for a in areas}
    batch = [dict(
        sims=np.stack([cell.gps, np.sqrt(cell.gps * cell.mask_iou), cell.mask_iou]),  # MODES order
        box_iou=cell.box_iou,
        gt_ignore=np.array([not has_densepose(a) for a in cell.gts], dtype=bool),
        gt_area=np.array([_gt_area(a) for a in cell.gts]),
        gt_crowd=np.array([bool(a.get("iscrowd", 0)) for a in cell.gts], dtype=bool),
        dt_area=dets.bbox[cell.dets, 2] * dets.bbox[cell.dets, 3],
        dt_score=dets.score[cell.dets],
    ) for cell in cells]
    for cell, res in zip(cells, match_images(batch, [AREA_RANGES[a] for a in areas])):
        if res is None:
            continue
        for mi, m in enumerate(MODES):
            for ai, a in enumerate(areas):
                evals[(m, a)][cat_index[cell.category_id]].append(res[mi][ai])
    return {m: summarize({a: accumulate(evals[(m, a)]) for a in areas}) for m in MODES}


# ---------------------------------------------------------------------------------------- COCO AP
_DET_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
_KP_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def coco_ap(coco: CocoDensePose, dets: Detections, warnings: Counter) -> dict:
    """Box AP, and mask / keypoint AP when the results carry ``segmentation`` / ``keypoints``, via pycocotools."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not len(dets):
        return {}
    anns = []
    for image_id in coco.image_ids:
        for a in coco.annotations.get(image_id, []):
            b = {k: v for k, v in a.items() if not k.startswith("dp_")}
            b.setdefault("iscrowd", 0)
            b.setdefault("area", _gt_area(a))
            b.setdefault("category_id", 1)
            anns.append(b)
    cats = coco.categories or [{"id": 1, "name": "person"}]
    records = dets.coco_records()
    out = {}
    with contextlib.redirect_stdout(io.StringIO()):
        cgt = COCO()
        cgt.dataset = {"images": [coco.images[i] for i in coco.image_ids], "annotations": anns, "categories": cats}
        cgt.createIndex()
        kinds = [("bbox", _DET_NAMES)]
        if all("segmentation" in r for r in records):
            if all(a.get("segmentation") for a in anns):
                kinds.append(("segm", _DET_NAMES))
            else:
                warnings["mask AP skipped: some ground truth has no segmentation"] += 1
        if all("keypoints" in r for r in records):
            if all(a.get("keypoints") for a in anns):
                kinds.append(("keypoints", _KP_NAMES))
            else:
                warnings["keypoint AP skipped: some ground truth has no keypoints"] += 1
        for kind, names in kinds:
            recs = copy.deepcopy(records) if kind != "bbox" else [
                {k: v for k, v in r.items() if k in ("image_id", "category_id", "bbox", "score")} for r in records]
            try:
                cdt = cgt.loadRes(recs)
                ev = COCOeval(cgt, cdt, kind)
                ev.evaluate()
                ev.accumulate()
                ev.summarize()
            except Exception as exc:  # pycocotools asserts on malformed input
                raise UserError(f"{dets.source}: pycocotools could not evaluate {kind} ({exc.__class__.__name__}: {exc})") from None
            out[kind] = {n: float(v) for n, v in zip(names, ev.stats)}
    return out


# ---------------------------------------------------------------------------------------- model
def evaluate_model(model, image_dir, annotations, surface="anny", device=None, *, kappa: str = "per-part",
                   exact: bool = False, max_images: int | None = None, progress: bool = True) -> dict:
    """Run a DensePose model over the images of an annotation file and evaluate its detections.

    Args:
        model: a ``DensePoseRCNN`` (contract in docs/ARCHITECTURE.md); put in eval mode for the
            run and restored afterwards.
        image_dir: folder of the images named by ``file_name``.
        annotations: DensePose-COCO ground truth (path, dict or ``CocoDensePose``).
        surface: ``BodySurface`` or name.
        device: torch device of the model (default: that of its parameters).
        max_images: evaluate only the first N images (quick checks during training).
    Returns:
        the ``evaluate`` dict (GT images not run are left out of the ground truth).
    """
    import torch
    from PIL import Image
    from tqdm import tqdm

    from densepose.modeling.postprocess import densepose_to_iuv_batch

    coco = _load_gt(annotations)
    surface = _load_surface(surface)
    surface.snap_table()  # models are evaluated again and again during training: make the snap a lookup
    ids = list(coco.image_ids)[: max_images] if max_images else list(coco.image_ids)
    if max_images:
        coco = CocoDensePose(coco.path, {i: coco.images[i] for i in ids}, {i: coco.annotations.get(i, []) for i in ids},
                             coco.categories, ids)
    if device is None:
        device = next(iter(model.parameters())).device
    image_id, bbox, score, iuvs, keypoints = [], [], [], [], []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in tqdm(ids, desc="inference", unit="img", disable=not progress, leave=False):
                path = Path(image_dir) / coco.images[i]["file_name"]
                try:
                    with Image.open(path) as im:
                        arr = np.asarray(im.convert("RGB"))
                except (OSError, ValueError) as exc:
                    raise UserError(f"{path}: cannot read image ({exc.__class__.__name__}: {exc})") from None
                img = torch.from_numpy(np.array(arr)).permute(2, 0, 1).float().to(device)
                out = model([img])[0]
                boxes = out["boxes"].detach().float().cpu()
                if not len(boxes):
                    continue
                iuvs += densepose_to_iuv_batch(out["coarse_segm"], out["fine_segm"], out["u"], out["v"], boxes)
                xywh = boxes.double().numpy().copy()
                xywh[:, 2:] -= xywh[:, :2]
                bbox.append(xywh)
                score.append(out["scores"].detach().double().cpu().numpy())
                image_id += [i] * len(boxes)
                if "keypoints" in out:
                    keypoints.append(out["keypoints"].detach().double().cpu().numpy().reshape(len(boxes), -1))
    finally:
        model.train(was_training)
    dets = detections_from_arrays(
        image_id, np.concatenate(bbox) if bbox else np.zeros((0, 4)), np.concatenate(score) if score else np.zeros(0),
        iuvs, np.concatenate(keypoints) if keypoints and len(keypoints) == len(bbox) else None)
    return evaluate(coco, dets, surface, kappa=kappa, exact=exact, progress=progress)


def detections_from_arrays(image_id, bbox, score, iuvs: list[np.ndarray], keypoints=None,
                           source: str = "<model>") -> Detections:
    """In-memory detections -> ``Detections`` with a packed IUV buffer.

    Args:
        image_id: (N,); bbox: (N, 4) xywh; score: (N,); iuvs: N uint8 (3, H, W) at box size;
        keypoints: (N, 17 * 3) or None.
    """
    n = len(iuvs)
    hw = np.array([a.shape[1:] for a in iuvs], dtype=np.int64).reshape(n, 2)
    sizes = 3 * hw[:, 0] * hw[:, 1]
    packed = np.concatenate([np.ascontiguousarray(a, dtype=np.uint8).ravel() for a in iuvs]) if n else np.zeros(0, np.uint8)
    offset = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if n else np.zeros(0, np.int64)
    extras = None if keypoints is None else [{"keypoints": np.asarray(k, dtype=np.float64).ravel().tolist()} for k in keypoints]
    return Detections(source, np.asarray(image_id, dtype=np.int64).reshape(n), np.ones(n, dtype=np.int64),
                      np.asarray(bbox, dtype=np.float64).reshape(n, 4), np.asarray(score, dtype=np.float64).reshape(n),
                      hw, packed=packed, offset=offset, extras=extras)
