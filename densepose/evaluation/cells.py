"""The units of evaluation: cells (one image and category) and batches of cells as flat pair arrays.

A cell holds an image's ground truth (GT) of one category and its top detections by score (at
most ``MAX_DETS``, as the protocol); the scorer fills its (D, G) matrices. Cells are scored in
batches whose (detection, GT) pairs are flat arrays, bounded in points and pixels (memory).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import chain

import numpy as np

from densepose.data.coco import CocoDensePose, has_densepose
from densepose.data.rle import DP_MASK_SIZE
from densepose.evaluation.matching import MAX_DETS
from densepose.evaluation.results import Detections


@dataclass
class Cell:
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


def make_cells(coco: CocoDensePose, dets: Detections, cat_ids: list[int], warnings: Counter,
               keep_gt=None, keep_det: np.ndarray | None = None) -> list[Cell]:
    """Group detections by (image, category), stable-sorted by score and cut at 20, as the reference.

    ``keep_gt(image_id) -> (G,) bool`` and ``keep_det`` (N,) bool drop people and detections
    before the cut (the reference's ignore regions); None keeps all.
    """
    order = np.lexsort((np.arange(len(dets)), -dets.score, dets.category_id, dets.image_id))
    if keep_det is not None:
        order = order[keep_det[order]]
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
        if keep_gt is not None:
            anns = [a for a, k in zip(anns, keep_gt(image_id)) if k]
        for cat in cat_ids:
            gts = [a for a in anns if int(a.get("category_id", 1)) == cat]
            d = groups.get((image_id, cat), np.zeros(0, dtype=np.int64))
            dropped += max(len(d) - MAX_DETS, 0)
            if not gts and not len(d):
                continue
            for a in gts:
                if "area" not in a:
                    warnings["ground truth without 'area' (box area used)"] += 1
            cells.append(Cell(image_id, cat, int(img["height"]), int(img["width"]), gts, d[:MAX_DETS]))
    if dropped:
        warnings[f"detections beyond the top {MAX_DETS} of their image (not evaluated, as the protocol)"] += dropped
    return cells


def gt_area(a: dict) -> float:
    """A GT's area for the area ranges: ``area``, else its box area."""
    return float(a["area"]) if "area" in a else float(a["bbox"][2]) * float(a["bbox"][3])


@dataclass
class Batch:
    """Cells scored together, with their (detection, GT) pairs as flat arrays.

    The pairs of cell c are ``pair_start[c]:pair_start[c + 1]``, its (D, G) matrix in row-major
    order; a cell without GT has no pair (and its detections are not in ``det_ids``).
    """

    cells: list[Cell]
    gts: list[dict]  # (G,) the GTs of the cells, cell after cell
    gt_start: np.ndarray  # (C + 1,) GTs of cell c: gts[gt_start[c]:gt_start[c + 1]]
    det_ids: np.ndarray  # (K,) index into the Detections
    det_cell: np.ndarray  # (K,) cell of each detection
    pair_start: np.ndarray  # (C + 1,)
    pair_det: np.ndarray  # (N,) index into det_ids
    pair_gt: np.ndarray  # (N,) index into gts


def make_batch(cells: list[Cell]) -> Batch:
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
    return Batch(
        cells=cells, gts=[a for c in cells for a in c.gts], gt_start=gt_start,
        det_ids=np.concatenate(dets).astype(np.int64) if dets else np.zeros(0, dtype=np.int64),
        det_cell=np.repeat(np.arange(C), D), pair_start=pair_start,
        pair_det=det_start[pair_cell] + q // np.maximum(Gp, 1), pair_gt=gt_start[pair_cell] + q % np.maximum(Gp, 1))


def batches(cells: list[Cell], max_points: int, max_pixels: int, det_pixels=None):
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


def ranges(start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start[i], start[i] + length[i])`` (sum(length),) int64."""
    offset = np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64)
    return np.arange(int(length.sum()), dtype=np.int64) + np.repeat(start - offset, length)


def gt_points(anns: list[dict]) -> tuple[np.ndarray, ...]:
    """The points of GTs, concatenated: dp_x, dp_y (P,) float64, I (P,) int64, U, V (P,) float64."""
    n = sum(len(a["dp_x"]) for a in anns)

    def cat(key: str) -> np.ndarray:
        return np.fromiter(chain.from_iterable(a[key] for a in anns), dtype=np.float64, count=n)

    return cat("dp_x"), cat("dp_y"), cat("dp_I").round().astype(np.int64), cat("dp_U"), cat("dp_V")
