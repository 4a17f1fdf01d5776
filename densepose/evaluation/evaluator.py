"""The DensePose evaluator: GPS, GPSm and IOU AP in one pass, the paper's pointwise curve, COCO AP.

Protocol (the official detectron2 ``DensePoseCocoEval``; docs/EVALUATION.md): the three modes
share one computation of every (detection, ground truth) pair (``scoring``), then greedy COCO
matching and accumulation run for all modes, area ranges and thresholds at once (``matching``).

- ``cells``: per image and category, the ground truth and the top 20 detections;
- ``scoring``: GPS, mask IoU and box IoU of every pair, batch by batch, and the pointwise curve;
- ``matching``: matching, precision / recall and the 10-number summary;
- ``coco_ap``: box / mask / keypoint AP with pycocotools.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from densepose.data.coco import CocoDensePose, has_densepose, load_coco, parse_coco
from densepose.errors import UserError
from densepose.evaluation.cells import Cell, make_cells
from densepose.evaluation.coco_ap import coco_ap
from densepose.evaluation.gt_checks import category_ids, check_ground_truth
from densepose.evaluation.ignore_regions import ignore_region_filters
from densepose.evaluation.matching import AREA_RANGES, MAX_DETS, accumulate_cells, iou_thresholds, summarize
from densepose.evaluation.results import Detections, load_results
from densepose.evaluation.scoring import KAPPA_MODES, PairScorer
from densepose.evaluation.timing import gc_paused

MODES = ("gps", "gpsm", "iou")
#: Mask IoU below this is not computed exactly (0): it cannot reach a threshold in IOU or GPSm mode
#: (IoU >= 0.5, and GPSm >= 0.5 needs IoU >= 0.25); with a lower ``min_iou`` t: 0.8 t^2.
IOU_FLOOR = 0.2


def evaluate(gt, results, surface, kappa: str = "per-part", exact: bool = False, *,
             gt_boxes: bool = False, min_iou: float = 0.5, pointwise_min_iou: float = 0.5,
             coco_metrics: bool = True, progress: bool = False, chunk_points: int = 1 << 20) -> dict:
    """Evaluate DensePose results against DensePose-COCO ground truth.

    Args:
        gt: annotations path, parsed COCO dict, or ``CocoDensePose``.
        results: results path (``.json`` or ``.npz``), list of result records, or ``Detections``.
        surface: a ``BodySurface`` or a surface name for ``densepose.surface.load_surface``.
        kappa: "per-part" (the official rule, measured on this surface), "smpl" (the official
            evaluator's constants) or "paper" (0.255 for every part).
        exact: exact surface points instead of the official vertex snap.
        min_iou: lowest matching threshold (thresholds min_iou:0.05:0.95, detectron2's
            ``min_iou_threshold``); below 0.5 the summary adds AP20 / AP30 / AP40 as it reaches them.
        gt_boxes: results were produced on the GT boxes; the pointwise curve then pairs each GT
            with the detection on its box (box IoU >= 0.99) instead of IoU >= ``pointwise_min_iou``.
        coco_metrics: also compute box / mask / keypoint AP with pycocotools where possible.
        progress: show a tqdm bar.
        chunk_points: bound on gathered points per chunk (memory).
    Returns:
        dict with ``densepose`` ({mode: {AP, AP50, ...}}), ``pointwise``, ``coco``, ``counts``,
        ``warnings`` (counted), ``settings``; values are fractions in [0, 1] (-1: undefined).
    """
    if kappa not in KAPPA_MODES:
        raise UserError(f"--kappa must be one of {', '.join(KAPPA_MODES)}, got {kappa!r}")
    if not 0.05 <= min_iou <= 0.5:
        raise UserError(f"--min-iou must be in [0.05, 0.5], got {min_iou}")
    coco = load_gt(gt)
    check_ground_truth(coco)
    dets = load_results(results)
    surface = load_surface(surface)
    warnings: Counter = Counter()

    known = np.array(sorted(coco.images), dtype=np.int64)
    unknown = np.flatnonzero(~np.isin(dets.image_id, known))
    if len(unknown):
        k = int(unknown[0])
        raise UserError(f"{dets.where(k)}: image_id {int(dets.image_id[k])} is not in the ground truth "
                        f"({len(unknown)} such result(s)); results of `densepose predict` take their ids from "
                        "--coco-json: rerun it with --json --coco-json <this ground-truth file>")
    cat_ids = category_ids(coco)
    off_cat = int(np.count_nonzero(~np.isin(dets.category_id, cat_ids)))
    if off_cat:
        warnings["detections with a category not in the ground truth (not evaluated)"] += off_cat

    with gc_paused():
        out = _evaluate_cells(coco, dets, surface, cat_ids, warnings, kappa, exact, gt_boxes, min_iou,
                              pointwise_min_iou, chunk_points, progress)
    if coco_metrics:
        out["coco"] = coco_ap(coco, dets, warnings)
    out["warnings"] = dict(warnings)
    return out


def _evaluate_cells(coco: CocoDensePose, dets: Detections, surface, cat_ids: list[int], warnings: Counter,
                    kappa: str, exact: bool, gt_boxes: bool, min_iou: float, pointwise_min_iou: float,
                    chunk_points: int, progress: bool) -> dict:
    """The DensePose part of ``evaluate``: cells, pair scores, matching, pointwise curve."""
    keep_gt, keep_det, dropped_gt, dropped_det = ignore_region_filters(coco, dets, cat_ids)
    cells = make_cells(coco, dets, cat_ids, warnings, keep_gt, keep_det)
    out: dict = {
        "settings": {"surface": getattr(surface, "name", None), "kappa": kappa, "exact": bool(exact),
                     "max_dets": MAX_DETS, "min_iou": float(min_iou), "gt_boxes": bool(gt_boxes)},
        "counts": {
            "images": len(coco.images),
            "gt": sum(len(a) for a in coco.annotations.values()),
            "gt_densepose": sum(has_densepose(a) for anns in coco.annotations.values() for a in anns),
            "detections": len(dets),
            "detections_evaluated": int(sum(len(c.dets) for c in cells)),
        },
    }
    if keep_gt is not None:
        out["counts"].update(gt_in_ignore_regions=dropped_gt, detections_in_ignore_regions=dropped_det)
    if not len(dets):
        warnings["the results hold no detection: every DensePose and COCO AP / AR is 0 "
                 "(-1 where the ground truth has nobody in that area range)"] += 1
    if dets.has_densepose or not len(dets):
        scorer = PairScorer(surface, kappa, exact, dets, pointwise_min_iou=0.99 if gt_boxes else pointwise_min_iou,
                            chunk_points=chunk_points, warnings=warnings,
                            iou_floor=min(IOU_FLOOR, 0.8 * min_iou * min_iou))
        scorer.run(cells, progress=progress)
        with scorer.timer("matching"):
            out["densepose"] = _summaries(cells, dets, cat_ids, iou_thresholds(min_iou))
        out["timing_s"] = scorer.timer.rounded()
        out["pointwise"] = scorer.curve.summary()
        out["counts"]["pairs"] = scorer.num_pairs
        out["counts"]["pairs_overlapping"] = scorer.num_pairs_overlapping
        out["counts"]["points"] = scorer.num_points_scored
    else:
        warnings["results carry no uv_data: DensePose metrics skipped"] += 1
    return out


def load_gt(gt) -> CocoDensePose:
    """Ground truth from a path, a parsed COCO dict or a ``CocoDensePose``."""
    if isinstance(gt, CocoDensePose):
        return gt
    if isinstance(gt, dict):
        return parse_coco(gt)
    return load_coco(gt)


def load_surface(surface):
    """A ``BodySurface``, or one loaded by name."""
    if isinstance(surface, str):
        from densepose.surface import load_surface as load  # the surface package is heavy; import on demand

        return load(surface)
    return surface


def _summaries(cells: list[Cell], dets: Detections, cat_ids: list[int], thresholds: np.ndarray) -> dict:
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
    precision, recall = accumulate_cells(batch, [AREA_RANGES[a] for a in areas], category, len(cat_ids),
                                         thresholds=thresholds)
    return {m: summarize({a: (precision[mi, ai], recall[mi, ai]) for ai, a in enumerate(areas)}, thresholds)
            for mi, m in enumerate(MODES)}
