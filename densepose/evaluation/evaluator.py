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

Speed (docs/EVALUATION.md): images are scored in bounded batches whose (detection, GT) pairs are
flat arrays; GT points are snapped once per GT, predictions by a lookup in
``BodySurface.snap_table()``; each detection's IUV is decoded once and read in place; the points of
a batch are gathered in one go and their geodesics come from one call; GT masks are zoomed
together by an exact NumPy replacement of scipy's zoom (``masks.zoom_masks``) and built only
where a detection meets them; a mask IoU that surely cannot reach a threshold is not counted
(``IOU_FLOOR``); matching runs for all images in padded batches. Nothing is n x n.
"""
from __future__ import annotations

import contextlib
import copy
import gc
import io
import time
from collections import Counter
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np

from densepose.data.coco import CocoDensePose, has_densepose, load_coco, parse_coco
from densepose.data.rle import DP_MASK_SIZE
from densepose.errors import UserError
from densepose.evaluation.mask_iou import pair_ious
from densepose.evaluation.matching import AREA_RANGES, MAX_DETS, accumulate_cells, summarize
from densepose.evaluation.results import Detections, load_results
from densepose.modeling.ops.boxes import box_iou_xywh
from densepose.surface.parts import NUM_CHARTS

MODES = ("gps", "gpsm", "iou")
#: Mask IoU below this is not computed exactly (0): it cannot reach a threshold in IOU or GPSm mode.
IOU_FLOOR = 0.2
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
    gt_ignore: np.ndarray = None  # (G,) no DensePose points
    gt_area: np.ndarray = None  # (G,)
    gt_crowd: np.ndarray = None  # (G,)


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

    with _gc_paused():
        out = _evaluate_cells(coco, dets, surface, cat_ids, warnings, kappa, exact, gt_boxes, pointwise_min_iou,
                              chunk_points, progress)
    if coco_metrics:
        out["coco"] = coco_ap(coco, dets, warnings)
    out["warnings"] = dict(warnings)
    return out


@contextlib.contextmanager
def _gc_paused():
    """Pause Python's cyclic garbage collector: the evaluator makes many short-lived containers,
    and a full collection walks every object of the ground truth (0.2 s for 1,700 people)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _evaluate_cells(coco: CocoDensePose, dets: Detections, surface, cat_ids: list[int], warnings: Counter,
                    kappa: str, exact: bool, gt_boxes: bool, pointwise_min_iou: float, chunk_points: int,
                    progress: bool) -> dict:
    """The DensePose part of ``evaluate``: cells, pair scores, matching, pointwise curve."""
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


# ---------------------------------------------------------------------------------------- pairs
@dataclass
class _Batch:
    """Cells scored together, with their (detection, GT) pairs as flat arrays.

    The pairs of cell c are ``pair_start[c]:pair_start[c + 1]``, its (D, G) matrix in row-major
    order; a cell without GT has no pair (and its detections are not in ``det_ids``).
    """

    cells: list[_Cell]
    gts: list[dict]  # (G,) the GTs of the cells, cell after cell
    gt_start: np.ndarray  # (C + 1,) GTs of cell c: gts[gt_start[c]:gt_start[c + 1]]
    det_ids: np.ndarray  # (K,) index into the Detections
    det_cell: np.ndarray  # (K,) cell of each detection
    pair_start: np.ndarray  # (C + 1,)
    pair_det: np.ndarray  # (N,) index into det_ids
    pair_gt: np.ndarray  # (N,) index into gts


def _make_batch(cells: list[_Cell]) -> _Batch:
    C = len(cells)
    G = np.array([len(c.gts) for c in cells], dtype=np.int64)
    D = np.array([len(c.dets) if len(c.gts) else 0 for c in cells], dtype=np.int64)
    pair_start = np.concatenate([[0], np.cumsum(D * G)]).astype(np.int64)
    det_start = np.concatenate([[0], np.cumsum(D)]).astype(np.int64)
    gt_start = np.concatenate([[0], np.cumsum(G)]).astype(np.int64)
    pair_cell = np.repeat(np.arange(C), D * G)
    q = np.arange(pair_start[-1]) - pair_start[pair_cell]  # index in the cell's (D, G) matrix
    Gp = G[pair_cell]
    dets = [c.dets for c, d in zip(cells, D) if d]
    return _Batch(
        cells=cells, gts=[a for c in cells for a in c.gts], gt_start=gt_start,
        det_ids=np.concatenate(dets).astype(np.int64) if dets else np.zeros(0, dtype=np.int64),
        det_cell=np.repeat(np.arange(C), D), pair_start=pair_start,
        pair_det=det_start[pair_cell] + q // np.maximum(Gp, 1), pair_gt=gt_start[pair_cell] + q % np.maximum(Gp, 1))


def _batches(cells: list[_Cell], max_points: int, max_pixels: int, det_pixels=None):
    """Consecutive cells in groups whose candidate points (detections x GT points) and pixels
    (GT masks; and ``det_pixels(cell)`` of decoded detections, if given) stay under the bounds
    (memory); a cell over a bound forms a group of its own."""
    group, points, pixels = [], 0, 0.0
    for cell in cells:
        p = len(cell.dets) * sum(len(a["dp_x"]) for a in cell.gts if has_densepose(a))
        x = sum(float(a["bbox"][2]) * float(a["bbox"][3]) + (DP_MASK_SIZE ** 2 if "dp_masks" in a else 0)
                for a in cell.gts) if len(cell.dets) else 0.0
        if det_pixels is not None and len(cell.gts):
            x += det_pixels(cell)
        if group and (points + p > max_points or pixels + x > max_pixels):
            yield group
            group, points, pixels = [], 0, 0.0
        group.append(cell)
        points += p
        pixels += x
    if group:
        yield group


def _ranges(start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start[i], start[i] + length[i])`` (sum(length),) int64."""
    offset = np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64)
    return np.arange(int(length.sum()), dtype=np.int64) + np.repeat(start - offset, length)


def _gt_points(anns: list[dict]) -> tuple[np.ndarray, ...]:
    """The points of GTs, concatenated: dp_x, dp_y (P,) float64, I (P,) int64, U, V (P,) float64."""
    n = sum(len(a["dp_x"]) for a in anns)

    def cat(key: str) -> np.ndarray:
        return np.fromiter(chain.from_iterable(a[key] for a in anns), dtype=np.float64, count=n)

    return cat("dp_x"), cat("dp_y"), cat("dp_I").round().astype(np.int64), cat("dp_U"), cat("dp_V")


def _read_iuv(dets: Detections, det_ids: np.ndarray, iuvs: list[np.ndarray], k: np.ndarray, y: np.ndarray,
              x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(I, U8, V8) int64 (M,) at pixel (y, x) of the IUV array of batch detection k, for M points."""
    hw = dets.uv_hw[det_ids[k]]
    flat = y * hw[:, 1] + x
    plane = hw[:, 0] * hw[:, 1]
    if dets.packed is not None:  # read the packed buffer in place
        buf = dets.packed.view(np.ndarray)
        flat = flat + dets.offset[det_ids[k]]
        return (buf[flat].astype(np.int64), buf[flat + plane].astype(np.int64), buf[flat + 2 * plane].astype(np.int64))
    out = np.zeros((3, len(k)), dtype=np.int64)
    order = np.argsort(k, kind="stable")
    bounds = np.flatnonzero(np.diff(k[order])) + 1
    for part in np.split(order, bounds) if len(k) else []:  # decoded arrays: one detection at a time
        out[:, part] = iuvs[int(k[part[0]])].reshape(3, -1)[:, flat[part]]
    return out[0], out[1], out[2]


class _PairScorer:
    """Fills ``gps``, ``mask_iou`` and ``box_iou`` of every cell, and the pointwise histogram."""

    def __init__(self, surface, kappa: str, exact: bool, dets: Detections, pointwise_min_iou: float,
                 chunk_points: int, warnings: Counter, chunk_pixels: int = 1 << 25):
        self.surface = surface
        self.kappa = np.asarray(surface.kappa_per_chart(kappa), dtype=np.float64)
        self.exact = exact
        self.dets = dets
        self.min_iou = pointwise_min_iou
        self.chunk_points = chunk_points
        self.chunk_pixels = chunk_pixels
        self.warnings = warnings
        self.hist = np.zeros(len(_HIST_EDGES_CM), dtype=np.int64)  # hist[k]: error in (t[k-1], t[k]]
        self.pointwise_total = 0
        self.pointwise_gt = 0
        self.pointwise_matched = 0
        self.num_pairs = 0
        self.num_pairs_overlapping = 0  # pairs with at least one GT point inside the detection box
        self.num_points_scored = 0
        self.timing = Counter()  # seconds: decode, masks, gather, snap+geodesic

    def run(self, cells: list[_Cell], progress: bool = False) -> None:
        from tqdm import tqdm

        with tqdm(total=len(cells), desc="evaluate", unit="img", disable=not progress, leave=False) as bar:
            det_pixels = None
            if self.dets.packed is None:  # decoded IUV arrays are held for a batch: count them
                det_pixels = lambda cell: 3 * float(np.prod(self.dets.uv_hw[cell.dets], axis=1).sum())  # noqa: E731
            for group in _batches(cells, self.chunk_points, self.chunk_pixels, det_pixels):
                self._score_batch(_make_batch(group))
                bar.update(len(group))

    def _score_batch(self, b: _Batch) -> None:
        dets = self.dets
        t0 = time.perf_counter()
        iuvs = dets.iuvs(b.det_ids)  # decoded (and checked) once per detection
        t1 = time.perf_counter()
        self.timing["decode"] += t1 - t0

        gt_box = np.array([[float(v) for v in a["bbox"]] for a in b.gts], dtype=np.float64).reshape(-1, 4)
        crowd = np.array([bool(a.get("iscrowd", 0)) for a in b.gts], dtype=bool)
        det_box = dets.bbox[b.det_ids]
        box_iou = box_iou_xywh(det_box[b.pair_det], gt_box[b.pair_gt], crowd[b.pair_gt])
        # Mask IoU against every GT (ignored ones too: the IOU mode can match them). A value below
        # 0.25 can decide nothing: IOU needs >= 0.5 and GPSm = sqrt(GPS * IoU) >= 0.5 needs
        # IoU >= 0.25 (GPS <= 1); so a pair whose areas and overlap bound its IoU below
        # IOU_FLOOR (0.2, a margin for rounding) gets 0 without counting its pixels.
        im_hw = np.array([(c.height, c.width) for c in b.cells], dtype=np.int64).reshape(-1, 2)
        gt_cell = np.repeat(np.arange(len(b.cells)), np.diff(b.gt_start))
        def where(j: int) -> str:  # only built for an error
            return f"ground truth of image {b.cells[gt_cell[j]].image_id} (annotation id {b.gts[j].get('id')})"

        mask_iou = pair_ious(b.gts, im_hw[gt_cell], where, det_box, im_hw[b.det_cell], iuvs.__getitem__,
                             b.pair_det, b.pair_gt, floor=IOU_FLOOR)
        self.timing["masks"] += time.perf_counter() - t1

        gps = self._gps(b, gt_box, iuvs, box_iou)
        ignore = np.array([not has_densepose(a) for a in b.gts], dtype=bool)
        area = np.array([_gt_area(a) for a in b.gts], dtype=np.float64)
        for c, cell in enumerate(b.cells):
            g0, g1 = b.gt_start[c], b.gt_start[c + 1]
            cell.gt_ignore, cell.gt_area, cell.gt_crowd = ignore[g0:g1], area[g0:g1], crowd[g0:g1]
            s, e = b.pair_start[c], b.pair_start[c + 1]
            shape = (len(cell.dets), len(cell.gts))
            if e > s:
                cell.box_iou, cell.mask_iou, cell.gps = (a[s:e].reshape(shape) for a in (box_iou, mask_iou, gps))
            else:
                cell.box_iou, cell.mask_iou, cell.gps = np.zeros(shape), np.zeros(shape), np.zeros(shape)

    def _gps(self, b: _Batch, gt_box: np.ndarray, iuvs: list[np.ndarray], box_iou: np.ndarray) -> np.ndarray:
        """GPS (N,) of every pair: the GT points read in the detection's IUV array, snapped and scored."""
        t0 = time.perf_counter()
        gps = np.zeros(len(b.pair_det))
        dp = np.array([has_densepose(a) for a in b.gts], dtype=bool)
        npts = np.array([len(a["dp_x"]) if has_densepose(a) else 0 for a in b.gts], dtype=np.int64)
        self.pointwise_gt += int(dp.sum())
        self.pointwise_total += int(npts.sum())
        pairs = np.flatnonzero(dp[b.pair_gt])  # (P,) the pairs with an annotated GT
        self.num_pairs += len(pairs)
        g = b.pair_gt[pairs]
        with_pairs = np.zeros(len(b.gts), dtype=bool)
        with_pairs[g] = True
        empty = int(np.count_nonzero(with_pairs & dp & (npts == 0)))
        if empty:
            self.warnings["DensePose ground truth with no points (GPS 0)"] += empty
        selected = self._pointwise_pairs(b, dp, box_iou)

        # GT points of the batch, in image pixels (the reference's /255 scaling).
        used = np.flatnonzero(with_pairs & (npts > 0))
        gx, gy, gI, gu, gv = _gt_points([b.gts[j] for j in used])
        n = npts[used]
        start = np.zeros(len(b.gts), dtype=np.int64)
        start[used] = np.cumsum(n) - n
        x0, y0, w, h = (np.repeat(col, n) for col in gt_box[used].T)
        gx = gx * w / 255.0 + x0
        gy = gy * h / 255.0 + y0

        # Candidates: each pair's GT points, for the pairs whose detection box can hold one of them.
        box = self.dets.bbox[b.det_ids[b.pair_det[pairs]]]
        dw = np.trunc(box[:, 2]).astype(np.int64)
        dh = np.trunc(box[:, 3]).astype(np.int64)
        ext = np.zeros((len(b.gts), 4))
        if len(used):
            first = start[used]
            ext[used] = np.stack([np.minimum.reduceat(gx, first), np.maximum.reduceat(gx, first),
                                  np.minimum.reduceat(gy, first), np.maximum.reduceat(gy, first)], axis=1)
        e = ext[g]
        near = ((npts[g] > 0) & (e[:, 1] - box[:, 0] > -2) & (e[:, 0] - box[:, 0] < dw + 1)
                & (e[:, 3] - box[:, 1] > -2) & (e[:, 2] - box[:, 1] < dh + 1))  # a margin: exact test below
        cand_pair = np.repeat(np.flatnonzero(near), npts[g[near]])  # (M,) index into pairs
        cand_pt = _ranges(start[g[near]], npts[g[near]])  # (M,) GT point, in order within each pair
        px = (gx[cand_pt] - box[cand_pair, 0]).astype(np.int64)  # truncation, like the reference's astype(int)
        py = (gy[cand_pt] - box[cand_pair, 1]).astype(np.int64)
        inside = (px >= 0) & (px < dw[cand_pair]) & (py >= 0) & (py < dh[cand_pair])
        cand_pair, cand_pt, px, py = cand_pair[inside], cand_pt[inside], px[inside], py[inside]
        self.num_pairs_overlapping += int(np.count_nonzero(np.bincount(cand_pair, minlength=len(pairs))))
        I, U, V = _read_iuv(self.dets, b.det_ids, iuvs, b.pair_det[pairs[cand_pair]], py, px)
        fg = I > 0
        pt_pair, pt_gt = cand_pair[fg], cand_pt[fg]
        code = (I[fg] << 16) | (U[fg] << 8) | V[fg]
        t1 = time.perf_counter()
        self.timing["gather"] += t1 - t0

        score, dist = self._score_points(pt_gt, code, gI, np.stack([gu, gv], 1))
        total = np.bincount(pt_pair, weights=score, minlength=len(pairs))
        gps[pairs] = np.where(npts[g] > 0, total / np.maximum(npts[g], 1), 0.0)
        if len(dist):
            sel = selected[pairs[pt_pair]]
            k = np.searchsorted(_HIST_EDGES_CM, dist[sel] * 100.0, side="left")
            self.hist += np.bincount(k[k < len(self.hist)], minlength=len(self.hist))
        self.timing["snap+geodesic"] += time.perf_counter() - t1
        return gps

    def _pointwise_pairs(self, b: _Batch, dp: np.ndarray, box_iou: np.ndarray) -> np.ndarray:
        """(N,) bool: for the pointwise curve, each DensePose GT takes the detection with the highest
        box IoU (the first one on a tie, as argmax), if that reaches ``min_iou``."""
        selected = np.zeros(len(box_iou), dtype=bool)
        pairs = np.flatnonzero(dp[b.pair_gt])
        if not len(pairs):
            return selected
        pairs = pairs[np.argsort(b.pair_gt[pairs], kind="stable")]  # by GT, detections in order
        g = b.pair_gt[pairs]
        first = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]]))
        v = box_iou[pairs]
        best = np.maximum.reduceat(v, first)
        top = np.repeat(best, np.diff(np.concatenate([first, [len(v)]])))
        at = np.flatnonzero(v == top)  # the best of each GT, ties included
        at = at[np.concatenate([[True], g[at[1:]] != g[at[:-1]]])]  # the first of each GT
        ok = v[at] >= self.min_iou
        selected[pairs[at[ok]]] = True
        self.pointwise_matched += int(ok.sum())
        return selected

    def _score_points(self, pt_gt: np.ndarray, code: np.ndarray, gt_I: np.ndarray,
                      gt_uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Score ``exp(-g^2 / (2 kappa^2))`` and geodesic error g, (n,) each, of n points.

        pt_gt (n,): GT point of each, into gt_I (P,) and gt_uv (P, 2); code (n,): the prediction
        I << 16 | U8 << 8 | V8. Each GT point is snapped once however many detections read it.
        """
        if not len(code):
            return np.zeros(0), np.zeros(0)
        surf = self.surface
        used = np.zeros(len(gt_I), dtype=bool)
        used[pt_gt] = True
        used = np.flatnonzero(used)
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
        self.num_points_scored += len(dist)
        k = self.kappa[gt_I[pt_gt]]
        return np.exp(-(dist ** 2) / (2.0 * k ** 2)), dist

    def _snap_pred(self, code: np.ndarray) -> np.ndarray:
        """Mesh vertex (N,) of the official snap of predicted codes I << 16 | U8 << 8 | V8 (I >= 1).

        A lookup in the surface's snap table when it is built (or worth building: more points than
        its 1.6 M entries); else the k-d tree on the distinct codes. Both give the same vertices.
        """
        surf = self.surface
        table = surf.snap_table(build=len(code) > (NUM_CHARTS << 16))  # (24, V8, U8) chart vertex, -1: none
        if table is not None:
            row = (((code >> 16) - 1) << 16) | ((code & 255) << 8) | ((code >> 8) & 255)
            cv = table.reshape(-1)[row]
            return np.where(cv >= 0, surf.chart_vertex_mesh[np.maximum(cv, 0)], -1)
        uniq, inv = np.unique(code, return_inverse=True)
        puv = np.stack([(uniq >> 8) & 255, uniq & 255], 1) / 255.0
        I = uniq >> 16
        out = np.full(len(uniq), -1, dtype=np.int64)
        known = np.isin(I, surf.chart_vertex_part)
        out[known] = surf.snap_to_mesh_vertex(I[known], puv[known])
        return out[inv]

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
    dt_area = dets.bbox[:, 2] * dets.bbox[:, 3]
    batch = [dict(
        sims=np.stack([cell.gps, np.sqrt(cell.gps * cell.mask_iou), cell.mask_iou]),  # MODES order
        box_iou=cell.box_iou, gt_ignore=cell.gt_ignore, gt_area=cell.gt_area, gt_crowd=cell.gt_crowd,
        dt_area=dt_area[cell.dets], dt_score=dets.score[cell.dets],
    ) for cell in cells]
    category = np.array([cat_index[cell.category_id] for cell in cells], dtype=np.int64)
    precision, recall = accumulate_cells(batch, [AREA_RANGES[a] for a in areas], category, len(cat_ids))
    return {m: summarize({a: (precision[mi, ai], recall[mi, ai]) for ai, a in enumerate(areas)})
            for mi, m in enumerate(MODES)}


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
