"""Our evaluator against detectron2's ``DensePoseCocoEval`` itself, number for number.

Needs detectron2's ``projects/DensePose/densepose/evaluation/densepose_coco_evaluation.py``: set
``DENSEPOSE_D2_EVALUATOR`` to its path (the test skips otherwise). Both evaluators get the same
surface (the planar test charts, exact geodesics, in the official table layout) and kappa (the
official SMPL constants: ``--kappa smpl``); the set has UV noise, fractional and shifted boxes,
false positives, people without DensePose, a crowd region and PoseTrack ignore regions.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from densepose.evaluation import evaluate
from densepose.evaluation.synthetic import detections_to_records, make_synthetic_set

from test_evaluation_gps import _planar_surface

EVALUATOR = os.environ.get("DENSEPOSE_D2_EVALUATOR")


def _set(surface, seed: int):
    gt, dets = make_synthetic_set(surface, num_images=10, people_per_image=(1, 4), num_points=40, uv_noise=0.15,
                                  false_positives=3, unannotated_per_image=1, seed=seed)
    records = detections_to_records(dets)
    rng = np.random.default_rng(seed)
    for r in records[::3]:
        r["bbox"] = [r["bbox"][0] + float(rng.uniform(-1.5, 1.5)), r["bbox"][1] + float(rng.uniform(-1.5, 1.5)),
                     r["bbox"][2] + 0.4, r["bbox"][3] + 0.3]
    gt["annotations"][1]["iscrowd"] = 1
    x, y, w, h = next(a for a in gt["annotations"] if a["image_id"] == 1)["bbox"]  # a person under a region
    gt["images"][0]["ignore_regions_x"], gt["images"][0]["ignore_regions_y"] = [[x, x + w, x + w, x]], [[y, y, y + h, y + h]]
    x, y, w, h = next(d for d in dets if d.image_id == 2 and d.gt_id is None).bbox  # a false positive under one
    gt["images"][1]["ignore_regions_x"] = [[x - 2, x + w + 2, x + w + 2, x - 2], [0, 40, 40]]
    gt["images"][1]["ignore_regions_y"] = [[y - 2, y - 2, y + h + 2, y + h + 2], [0, 0, 40]]
    return gt, records


@pytest.mark.skipif(not EVALUATOR, reason="DENSEPOSE_D2_EVALUATOR (detectron2's densepose_coco_evaluation.py) not set")
@pytest.mark.parametrize("seed", [1, 2])
def test_same_numbers_as_detectron2(seed, tmp_path):
    surface = _planar_surface()
    a, b = np.tril_indices(surface.num_vertices, -1)
    np.savez(tmp_path / "surface.npz", uv=surface.chart_uv, part=surface.chart_vertex_part,
             mesh=surface.chart_vertex_mesh, pdist=surface.geodesics.between_vertices(a, b))
    gt, records = _set(surface, seed)
    min_ious = [0.5, 0.2]
    (tmp_path / "set.json").write_text(json.dumps({"gt": gt, "records": records, "min_ious": min_ious}))
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("d2_eval_runner.py")), EVALUATOR,
                           str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    official = json.loads(proc.stdout.strip().splitlines()[-1])
    for min_iou in min_ious:
        m = evaluate(gt, records, surface, kappa="smpl", min_iou=min_iou, coco_metrics=False)
        assert m["counts"]["gt_in_ignore_regions"] == 1 and m["counts"]["detections_in_ignore_regions"] >= 1
        for mode, name in (("gps", "GPS"), ("gpsm", "GPSM"), ("iou", "IOU")):
            assert list(m["densepose"][mode].values()) == official[f"{min_iou}-{name}"], (min_iou, mode)
