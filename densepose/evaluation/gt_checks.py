"""Checks of the ground truth for evaluation, beyond ``data.coco``'s shape checks.

Each value that would otherwise be dropped silently, crash later or make pycocotools spin is an
error naming the file and the record: an ``area`` that is not a finite number >= 0, a
``category_id`` or ``iscrowd`` of the wrong type, a ``category_id`` missing from ``categories``,
an id that does not fit 64 bits, a corrupt ``dp_masks`` or ``segmentation`` RLE, malformed
``ignore_regions_x`` / ``ignore_regions_y``.
"""
from __future__ import annotations

import math

import numpy as np

from densepose.data.coco import CocoDensePose
from densepose.errors import UserError
from densepose.evaluation.rle import valid_rles

_INT64 = 1 << 63


def category_ids(coco: CocoDensePose) -> list[int]:
    """The evaluated categories: the ids of ``categories`` (else those of the annotations, else [1])."""
    for k, c in enumerate(coco.categories):
        if not (isinstance(c, dict) and _is_int(c.get("id"))):
            raise UserError(f"{coco.path}: categories[{k}] must be an object with an integer 'id'")
    cats = sorted({int(c["id"]) for c in coco.categories})
    if not cats:
        cats = sorted({int(a.get("category_id", 1)) for anns in coco.annotations.values() for a in anns}) or [1]
    return cats


def check_ground_truth(coco: CocoDensePose) -> None:
    """Raise ``UserError`` on the first record the evaluator cannot take as it is (see module doc).

    Reading every RLE string costs about 0.2 s per 1,000 people, so a ground truth that passed
    is marked and not checked again (models are evaluated on the same one again and again).
    """
    if getattr(coco, "_checked_for_evaluation", False):
        return
    path = coco.path
    for image_id in coco.image_ids:
        if not -_INT64 <= image_id < _INT64:
            raise UserError(f"{path}: image id {image_id} does not fit in 64 bits")
        _check_ignore_regions(coco.images[image_id], f"{path}: image {image_id}")
    cats = set(category_ids(coco))
    listed = bool(coco.categories)
    rles, owners = [], []
    for image_id in coco.image_ids:
        for a in coco.annotations.get(image_id, []):
            where = f"{path}: annotation id {a.get('id')} (image {image_id})"
            if "area" in a and not (_is_num(a["area"]) and math.isfinite(a["area"]) and a["area"] >= 0):
                raise UserError(f"{where}: area must be a finite number >= 0, got {a['area']!r}"[:300])
            cat = a.get("category_id", 1)
            if not _is_int(cat):
                raise UserError(f"{where}: category_id must be an integer, got {cat!r}"[:300])
            if listed and cat not in cats:
                raise UserError(f"{where}: category_id {cat} is not in 'categories' (ids {sorted(cats)})")
            crowd = a.get("iscrowd", 0)
            if not (_is_num(crowd) or isinstance(crowd, bool)) or crowd not in (0, 1):  # 1.0 reads as 1, as pycocotools
                raise UserError(f"{where}: iscrowd must be 0 or 1, got {crowd!r}"[:300])
            for j, m in enumerate(a.get("dp_masks") or []):
                if m:
                    rles.append(m)
                    owners.append((where, f"dp_masks[{j}]"))
            seg = a.get("segmentation")
            if isinstance(seg, dict):
                rles.append(seg)
                owners.append((where, "segmentation"))
    bad = np.flatnonzero(~valid_rles(rles))
    if len(bad):
        where, name = owners[int(bad[0])]
        raise UserError(f"{where}: {name} is not a valid RLE (its runs must cover size[0] x size[1] pixels)")
    coco._checked_for_evaluation = True


def _check_ignore_regions(img: dict, where: str) -> None:
    """PoseTrack-style ignore regions: lists of polygons, x and y separately, of equal lengths."""
    if "ignore_regions_x" not in img and "ignore_regions_y" not in img:
        return
    xs, ys = img.get("ignore_regions_x"), img.get("ignore_regions_y")
    if not (isinstance(xs, list) and isinstance(ys, list) and len(xs) == len(ys)):
        raise UserError(f"{where}: ignore_regions_x and ignore_regions_y must be lists of the same length")
    for k, (x, y) in enumerate(zip(xs, ys)):
        if not (isinstance(x, list) and isinstance(y, list) and len(x) == len(y) and len(x) >= 3
                and all(_is_num(v) and math.isfinite(v) for v in x + y)):
            raise UserError(f"{where}: ignore region {k} must be two lists of >= 3 finite numbers (x and y) "
                            "of the same length")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
