"""COCO box / mask / keypoint AP of DensePose results, with pycocotools.

Box AP always; mask AP when every result carries a ``segmentation`` (and every GT one); keypoint
AP likewise with ``keypoints``. The DensePose fields of the ground truth are left out.
"""
from __future__ import annotations

import contextlib
import copy
import io
from collections import Counter

import numpy as np

from densepose.data.coco import CocoDensePose
from densepose.errors import UserError
from densepose.evaluation.cells import gt_area
from densepose.evaluation.results import Detections
from densepose.evaluation.rle import valid_rles

_DET_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
_KP_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def coco_ap(coco: CocoDensePose, dets: Detections, warnings: Counter) -> dict:
    """Box AP, and mask / keypoint AP when the results carry ``segmentation`` / ``keypoints``, via pycocotools."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    anns = []
    for image_id in coco.image_ids:
        for a in coco.annotations.get(image_id, []):
            b = {k: v for k, v in a.items() if not k.startswith("dp_")}
            b.setdefault("iscrowd", 0)
            b.setdefault("area", gt_area(a))
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
        if records and all("segmentation" in r for r in records):
            if all(a.get("segmentation") for a in anns):
                kinds.append(("segm", _DET_NAMES))
            else:
                warnings["mask AP skipped: some ground truth has no segmentation"] += 1
        if records and all("keypoints" in r for r in records):
            if all(a.get("keypoints") for a in anns):
                kinds.append(("keypoints", _KP_NAMES))
            else:
                warnings["keypoint AP skipped: some ground truth has no keypoints"] += 1
        for kind, names in kinds:
            if kind == "segm":
                _check_segmentations(records, dets)
            recs = copy.deepcopy(records) if kind != "bbox" else [
                {"image_id": r["image_id"], "category_id": r["category_id"], "bbox": r.get("detection_bbox", r["bbox"]),
                 "score": r.get("detection_score", r["score"])} for r in records]
            try:
                cdt = cgt.loadRes(recs) if recs else _empty_results(cgt)
                ev = COCOeval(cgt, cdt, kind)
                ev.evaluate()
                ev.accumulate()
                ev.summarize()
            except Exception as exc:  # pycocotools asserts on malformed input
                raise UserError(f"{dets.source}: pycocotools could not evaluate {kind} ({exc.__class__.__name__}: {exc})") from None
            out[kind] = {n: float(v) for n, v in zip(names, ev.stats)}
    return out


def _empty_results(cgt):
    """A pycocotools results object without detections (``loadRes`` fails on an empty list);
    COCOeval then gives AP and AR 0 wherever the ground truth has people."""
    from pycocotools.coco import COCO

    cdt = COCO()
    cdt.dataset = {"images": list(cgt.dataset["images"]), "annotations": [],
                   "categories": list(cgt.dataset["categories"])}
    cdt.createIndex()
    return cdt


def _check_segmentations(records: list[dict], dets: Detections) -> None:
    """A corrupt RLE ``segmentation`` can make pycocotools loop for minutes: refuse it first."""
    rles = [(k, r["segmentation"]) for k, r in enumerate(records) if isinstance(r.get("segmentation"), dict)]
    bad = np.flatnonzero(~valid_rles([r for _, r in rles]))
    if len(bad):
        raise UserError(f"{dets.where(rles[int(bad[0])][0])}: segmentation is not a valid RLE "
                        "(its runs must cover size[0] x size[1] pixels)")
