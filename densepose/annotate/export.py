"""Export a project as DensePose-COCO JSON (read unchanged by ``densepose train`` / ``evaluate``).

Every image and person box is written; the DensePose fields (``dp_x``, ``dp_y``, ``dp_I``, ``dp_U``,
``dp_V``, ``dp_masks``) only for persons whose two steps are finished. Skipped points, and any point
whose chart is not in the part painted at its pixel, are left out; a finished person whose points
were all skipped keeps ``dp_masks`` alone. Second annotators' copies of a person
(``review.replicate``) are not exported. ``file_name`` is relative to ``PROJECT/images``, the
``--image-root`` to use.
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np

from densepose.annotate import db
from densepose.cache import atomic_write_bytes
from densepose.data.rle import DP_MASK_SIZE, decode_dp_masks
from densepose.surface.parts import CHART_TO_MASK_PART

#: COCO person skeleton (1-based keypoint pairs), as in the COCO categories record.
COCO_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9],
                 [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]


def consistent_points(labels: np.ndarray, pts: list) -> list:
    """The answered points whose chart lies in the part painted at their pixel.

    The app refuses clicks outside the painted part and drops answers whose part is repainted, so
    this filter is a last guard: the exported file never contradicts itself.
    """
    keep = []
    for q in pts:
        col = min(max(int(np.floor(q["x"])), 0), DP_MASK_SIZE - 1)
        row = min(max(int(np.floor(q["y"])), 0), DP_MASK_SIZE - 1)
        if CHART_TO_MASK_PART[q["I"]] == labels[row, col]:
            keep.append(q)
    return keep


def export_coco(con: sqlite3.Connection) -> dict:
    """The project as a DensePose-COCO dict."""
    from densepose.data.coco import KEYPOINT_NAMES  # imports torch: only when exporting

    images = [{"id": r["id"], "file_name": r["file_name"], "width": r["width"], "height": r["height"]}
              for r in con.execute("SELECT * FROM images ORDER BY id")]
    anns = []
    for p in con.execute("SELECT * FROM persons WHERE replica_of IS NULL ORDER BY image_id, id").fetchall():
        extra = json.loads(p["extra"])
        ann = {"id": p["id"], "image_id": p["image_id"], "category_id": 1,
               "bbox": [p["x"], p["y"], p["w"], p["h"]], "area": extra.get("area", p["w"] * p["h"]),
               "iscrowd": extra.get("iscrowd", 0)}
        for key in ("keypoints", "num_keypoints", "segmentation"):
            if key in extra:
                ann[key] = extra[key]
        if p["stage"] == "done" and p["dp_masks"]:
            pts = con.execute("SELECT * FROM points WHERE person_id=? AND status='done' ORDER BY idx", (p["id"],)).fetchall()
            ann["dp_masks"] = json.loads(p["dp_masks"])
            pts = consistent_points(decode_dp_masks(ann["dp_masks"]), pts)
            if not pts:  # parts but every point skipped: no point fields (evaluators ignore such people)
                anns.append(ann)
                continue
            ann["dp_x"] = [q["x"] for q in pts]
            ann["dp_y"] = [q["y"] for q in pts]
            ann["dp_I"] = [q["I"] for q in pts]
            ann["dp_U"] = [min(max(q["U"], 0.0), 1.0) for q in pts]
            ann["dp_V"] = [min(max(q["V"], 0.0), 1.0) for q in pts]
        anns.append(ann)
    categories = [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(KEYPOINT_NAMES),
                   "skeleton": COCO_SKELETON}]
    return {"info": {"description": "densepose annotate export"}, "images": images, "annotations": anns,
            "categories": categories}


def export_project(project: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Write the project's DensePose-COCO JSON to ``out`` atomically; returns counts."""
    con = db.connect(project)
    try:
        data = export_coco(con)
    finally:
        con.close()
    atomic_write_bytes(Path(out), json.dumps(data).encode("utf-8"))
    return {"images": len(data["images"]), "persons": len(data["annotations"]),
            "annotated": sum("dp_x" in a for a in data["annotations"]),
            "points": sum(len(a.get("dp_x", [])) for a in data["annotations"])}
