"""Scores of every (detection, ground truth) pair: GPS, mask IoU and box IoU, batch by batch.

- GPS: each GT point goes to pixel ``int(dp_x * w_gt / 255 + x_gt - x_dt)`` (likewise y) of the
  detection's IUV array; points outside the detection box, or where it predicts background, score
  0; GT and predicted (I, U, V) become mesh vertices by the official snap (nearest chart vertex in
  UV; or exact surface points with ``exact=True``); GPS is the mean over GT points of
  ``exp(-g^2 / (2 kappa^2))`` with g the geodesic distance and kappa that of the GT chart.
- IoU: ``mask_iou.pair_ious``; box IoU: ``modeling.ops.boxes.box_iou_xywh`` (pycocotools').

GT points are snapped once per GT, predictions by a lookup in ``BodySurface.snap_table()``; each
detection's IUV is decoded once and read in place; the points of a batch are gathered in one go
and their geodesics come from one call.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from densepose.data.coco import has_densepose
from densepose.errors import UserError
from densepose.evaluation.cells import Batch, Cell, batches, gt_area, gt_points, make_batch, ranges
from densepose.evaluation.mask_iou import pair_ious
from densepose.evaluation.pointwise import PointwiseCurve
from densepose.evaluation.results import Detections
from densepose.evaluation.timing import StageTimer
from densepose.modeling.ops.boxes import box_iou_xywh
from densepose.surface.parts import CHART_TO_KAPPA_GROUP, NUM_CHARTS, OFFICIAL_SMPL_KAPPA

KAPPA_MODES = ("per-part", "paper", "smpl")


def kappa_per_chart(surface, mode: str) -> np.ndarray:
    """(25,) kappa of each chart (index 0: inf). "smpl": the constants the official evaluator
    hard-codes (per coarse part, measured on SMPL); "per-part": the same rule measured on this
    surface; "paper": 0.255 everywhere."""
    if mode == "smpl":
        k = OFFICIAL_SMPL_KAPPA[CHART_TO_KAPPA_GROUP].astype(np.float64)
        k[0] = np.inf
        return k
    return np.asarray(surface.kappa_per_chart(mode), dtype=np.float64)


class PairScorer:
    """Fills ``gps``, ``mask_iou`` and ``box_iou`` of every cell, and the pointwise curve.

    ``iou_floor``: a mask IoU surely below it is not counted (0); it must stay below what the
    lowest threshold can need (IOU mode: t; GPSm = sqrt(GPS * IoU) >= t needs IoU >= t^2).
    """

    def __init__(self, surface, kappa: str, exact: bool, dets: Detections, pointwise_min_iou: float,
                 chunk_points: int, warnings: Counter, iou_floor: float, chunk_pixels: int = 1 << 25):
        self.surface = surface
        self.kappa = kappa_per_chart(surface, kappa)
        self.exact = exact
        self.dets = dets
        self.curve = PointwiseCurve(pointwise_min_iou)
        self.chunk_points = chunk_points
        self.chunk_pixels = chunk_pixels
        self.iou_floor = iou_floor
        self.warnings = warnings
        self.num_pairs = 0
        self.num_pairs_overlapping = 0  # pairs with at least one GT point inside the detection box
        self.num_points_scored = 0
        self.timer = StageTimer()  # decode, masks, gather, snap+geodesic (and matching, by the caller)

    def run(self, cells: list[Cell], progress: bool = False) -> None:
        from tqdm import tqdm

        with tqdm(total=len(cells), desc="evaluate", unit="img", disable=not progress, leave=False) as bar:
            det_pixels = None
            if self.dets.packed is None:  # decoded IUV arrays are held for a batch: count them
                det_pixels = lambda cell: 3 * float(np.prod(self.dets.uv_hw[cell.dets], axis=1).sum())  # noqa: E731
            for group in batches(cells, self.chunk_points, self.chunk_pixels, det_pixels):
                self._score_batch(make_batch(group))
                bar.update(len(group))

    def _score_batch(self, b: Batch) -> None:
        dets = self.dets
        with self.timer("decode"):
            iuvs = dets.iuvs(b.det_ids)  # decoded (and checked) once per detection
        with self.timer("masks"):
            gt_box = np.array([[float(v) for v in a["bbox"]] for a in b.gts], dtype=np.float64).reshape(-1, 4)
            crowd = np.array([bool(a.get("iscrowd", 0)) for a in b.gts], dtype=bool)
            det_box = dets.bbox[b.det_ids]
            box_iou = box_iou_xywh(det_box[b.pair_det], gt_box[b.pair_gt], crowd[b.pair_gt])
            # Mask IoU against every GT (ignored ones too: the IOU mode can match them); a pair
            # whose areas and overlap bound its IoU below iou_floor gets 0 without counting.
            im_hw = np.array([(c.height, c.width) for c in b.cells], dtype=np.int64).reshape(-1, 2)
            gt_cell = np.repeat(np.arange(len(b.cells)), np.diff(b.gt_start))

            def where(j: int) -> str:  # only built for an error
                return f"ground truth of image {b.cells[gt_cell[j]].image_id} (annotation id {b.gts[j].get('id')})"

            mask_iou = pair_ious(b.gts, im_hw[gt_cell], where, det_box, im_hw[b.det_cell], iuvs.__getitem__,
                                 b.pair_det, b.pair_gt, floor=self.iou_floor)

        gps = self._gps(b, gt_box, iuvs, box_iou)
        ignore = np.array([not has_densepose(a) for a in b.gts], dtype=bool)
        area = np.array([gt_area(a) for a in b.gts], dtype=np.float64)
        for c, cell in enumerate(b.cells):
            g0, g1 = b.gt_start[c], b.gt_start[c + 1]
            cell.gt_ignore, cell.gt_area, cell.gt_crowd = ignore[g0:g1], area[g0:g1], crowd[g0:g1]
            s, e = b.pair_start[c], b.pair_start[c + 1]
            shape = (len(cell.dets), len(cell.gts))
            if e > s:
                cell.box_iou, cell.mask_iou, cell.gps = (a[s:e].reshape(shape) for a in (box_iou, mask_iou, gps))
            else:
                cell.box_iou, cell.mask_iou, cell.gps = np.zeros(shape), np.zeros(shape), np.zeros(shape)

    def _gps(self, b: Batch, gt_box: np.ndarray, iuvs: list[np.ndarray], box_iou: np.ndarray) -> np.ndarray:
        """GPS (N,) of every pair: the GT points read in the detection's IUV array, snapped and scored."""
        with self.timer("gather"):
            gps = np.zeros(len(b.pair_det))
            dp = np.array([has_densepose(a) for a in b.gts], dtype=bool)
            npts = np.array([len(a["dp_x"]) if has_densepose(a) else 0 for a in b.gts], dtype=np.int64)
            self.curve.add_gts(int(dp.sum()), int(npts.sum()))
            pairs = np.flatnonzero(dp[b.pair_gt])  # (P,) the pairs with an annotated GT
            self.num_pairs += len(pairs)
            g = b.pair_gt[pairs]
            with_pairs = np.zeros(len(b.gts), dtype=bool)
            with_pairs[g] = True
            empty = int(np.count_nonzero(with_pairs & dp & (npts == 0)))
            if empty:
                self.warnings["DensePose ground truth with no points (GPS 0)"] += empty
            selected = self.curve.select_pairs(b.pair_gt, dp, box_iou)

            # GT points of the batch, in image pixels (the reference's /255 scaling).
            used = np.flatnonzero(with_pairs & (npts > 0))
            gx, gy, gI, gu, gv = gt_points([b.gts[j] for j in used])
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
            cand_pt = ranges(start[g[near]], npts[g[near]])  # (M,) GT point, in order within each pair
            px = (gx[cand_pt] - box[cand_pair, 0]).astype(np.int64)  # truncation, like the reference's astype(int)
            py = (gy[cand_pt] - box[cand_pair, 1]).astype(np.int64)
            inside = (px >= 0) & (px < dw[cand_pair]) & (py >= 0) & (py < dh[cand_pair])
            cand_pair, cand_pt, px, py = cand_pair[inside], cand_pt[inside], px[inside], py[inside]
            self.num_pairs_overlapping += int(np.count_nonzero(np.bincount(cand_pair, minlength=len(pairs))))
            I, U, V = read_iuv(self.dets, b.det_ids, iuvs, b.pair_det[pairs[cand_pair]], py, px)
            fg = I > 0
            pt_pair, pt_gt = cand_pair[fg], cand_pt[fg]
            code = (I[fg] << 16) | (U[fg] << 8) | V[fg]

        with self.timer("snap+geodesic"):
            score, dist = self._score_points(pt_gt, code, gI, np.stack([gu, gv], 1))
            total = np.bincount(pt_pair, weights=score, minlength=len(pairs))
            gps[pairs] = np.where(npts[g] > 0, total / np.maximum(npts[g], 1), 0.0)
            if len(dist):
                self.curve.add_errors(dist[selected[pairs[pt_pair]]])
        return gps

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


def read_iuv(dets: Detections, det_ids: np.ndarray, iuvs: list[np.ndarray], k: np.ndarray, y: np.ndarray,
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
