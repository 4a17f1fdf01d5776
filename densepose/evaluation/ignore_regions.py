"""PoseTrack-style ignore regions: ``ignore_regions_x`` / ``ignore_regions_y`` polygons per image.

As the official evaluator (``DensePoseCocoEval._prepare``), before anything else is computed:

- a ground-truth person whose integer box is >= 70 % covered by the image's regions is dropped
  (and one whose integer box is empty, in an image with regions);
- in images with ground truth, a detection whose foreground (I > 0) lies >= 90 % inside the
  regions is dropped (and one with an empty integer box).

"Integer box" is ``int(x), int(y), int(x) + int(w), int(y) + int(h)``, clipped at the image's far
edges. Dropped people and detections take no part at all (neither matched nor ignored).
"""
from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from densepose.data.coco import CocoDensePose
from densepose.evaluation.results import Detections

#: Fraction of a GT box covered by ignore regions from which the person is dropped.
GT_COVER = 0.7
#: Fraction of a detection's foreground inside ignore regions from which it is dropped.
DET_COVER = 0.9


def region_mask(img: dict) -> np.ndarray | None:
    """The image's ignore regions as an (H, W) uint8 mask, or None when it has none."""
    xs = img.get("ignore_regions_x") or []
    if not xs:
        return None
    polys = [[float(v) for xy in zip(x, y) for v in xy] for x, y in zip(xs, img["ignore_regions_y"])]
    h, w = int(img["height"]), int(img["width"])
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, h, w)))


def _crop(region: np.ndarray, bbox) -> tuple[np.ndarray | None, tuple[int, int]]:
    """The region under a box's integer box (NumPy slicing, as the reference) and the integer
    (h, w); None when that box is empty."""
    x, y, w, h = (int(v) for v in np.asarray(bbox, dtype=np.float64))
    if w * h == 0:
        return None, (h, w)
    return region[y : min(y + h, region.shape[0]), x : min(x + w, region.shape[1])], (h, w)


def _box_kept(region: np.ndarray, bbox) -> bool:
    """The reference's test for boxes: kept unless >= ``GT_COVER`` of the integer box is covered."""
    crop, (h, w) = _crop(region, bbox)
    if crop is None:
        return False
    covered = int(crop.sum())
    return covered == 0 or covered / w / h < GT_COVER


def keep_gt(region: np.ndarray | None, anns: list[dict]) -> np.ndarray:
    """(G,) bool: the people of an image that its ignore regions do not drop."""
    if region is None:
        return np.ones(len(anns), dtype=bool)
    return np.array([_box_kept(region, a["bbox"]) for a in anns], dtype=bool)


def keep_detection(region: np.ndarray, bbox, iuv: np.ndarray | None) -> bool:
    """Whether a detection survives its image's ignore regions; ``iuv`` (3, H, W) its IUV array
    (None for box-only results: the box test of the ground truth)."""
    if iuv is None:
        return _box_kept(region, bbox)
    crop, _ = _crop(region, bbox)
    if crop is None:
        return False
    if not crop.any():
        return True
    fg = iuv[0] > 0
    if fg.shape != crop.shape or not fg.any():  # pycocotools' IoU is then -1 or 0: kept
        return True
    return np.count_nonzero(fg & (crop > 0)) / np.count_nonzero(fg) < DET_COVER


def ignore_region_filters(coco: CocoDensePose, dets: Detections, cat_ids: list[int]):
    """(keep_gt(image_id) -> (G,) bool or None, keep_det (N,) bool or None, dropped GT, dropped detections).

    None (and 0, 0) when no image has ignore regions.
    """
    regions = {i: region_mask(img) for i, img in coco.images.items() if img.get("ignore_regions_x")}
    regions = {i: r for i, r in regions.items() if r is not None}
    if not regions:
        return None, None, 0, 0
    gt_keep = {i: keep_gt(regions.get(i), coco.annotations.get(i, [])) for i in regions}
    cats = set(cat_ids)
    with_gt = {i for i in regions if any(int(a.get("category_id", 1)) in cats for a in coco.annotations.get(i, []))}
    keep_det = np.ones(len(dets), dtype=bool)
    for k in np.flatnonzero(np.isin(dets.image_id, list(with_gt))):
        iuv = dets.iuv(int(k)) if dets.has_densepose else None
        keep_det[k] = keep_detection(regions[int(dets.image_id[k])], dets.bbox[k], iuv)
    dropped_gt = int(sum(np.count_nonzero(~v) for v in gt_keep.values()))

    def keep(image_id: int) -> np.ndarray:
        return gt_keep[image_id] if image_id in gt_keep else np.ones(len(coco.annotations.get(image_id, [])), bool)

    return keep, keep_det, dropped_gt, int(np.count_nonzero(~keep_det))
