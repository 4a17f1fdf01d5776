"""Run detectron2's ``DensePoseCocoEval`` (its unmodified ``densepose_coco_evaluation.py``) on a set
written by ``test_evaluation_official.py``; print its summary numbers as JSON.

    python d2_eval_runner.py EVALUATOR_PY WORK_DIR

Runs in its own process: the evaluator's imports of detectron2 and of its own ``densepose``
package are stubbed (the IUV path does not use them), and ``_loadGEval`` is given the tables of
the test surface (``surface.npz``) in the official layout instead of downloading SMPL's.
"""
from __future__ import annotations

import base64
import contextlib
import importlib.util
import io
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pycocotools.coco import COCO

SMPL_MEAN_DISTANCES = [0, 0.351, 0.107, 0.126, 0.237, 0.173, 0.142, 0.128, 0.150]
SMPL_COARSE_PARTS = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 8, 8]


def _stub(name: str, **attrs) -> None:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module


def load_official(path: str):
    class DensePoseDataRelative:
        S_KEY = "dp_masks"

    for name in ("detectron2", "detectron2.utils", "densepose", "densepose.converters", "densepose.modeling",
                 "densepose.modeling.cse"):
        _stub(name)
    _stub("detectron2.utils.file_io", PathManager=None)
    _stub("densepose.converters.chart_output_to_chart_result", resample_uv_tensors_to_bbox=None)
    _stub("densepose.converters.segm_to_mask", resample_coarse_segm_tensor_to_bbox=None,
          resample_fine_and_coarse_segm_tensors_to_bbox=None)
    _stub("densepose.modeling.cse.utils", squared_euclidean_distance_matrix=None)
    _stub("densepose.structures", DensePoseDataRelative=DensePoseDataRelative)
    _stub("densepose.structures.mesh", create_mesh=None)
    spec = importlib.util.spec_from_file_location("d2_densepose_coco_evaluation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(evaluator: str, work: Path) -> None:
    d2 = load_official(evaluator)
    tables = np.load(work / "surface.npz")

    class Eval(d2.DensePoseCocoEval):
        def _loadGEval(self):  # the official tables, for the test surface
            uv, part = tables["uv"].T, tables["part"]
            ids = np.arange(uv.shape[1]) + 1  # 1-based chart vertices
            self.Part_UVs = [uv[:, part == i + 1] for i in range(24)]
            self.Part_ClosestVertInds = [ids[part == i + 1] for i in range(24)]
            self.PDIST_transform = tables["mesh"] + 1  # 1-based mesh vertices
            self.Pdist_matrix = tables["pdist"][:, None]  # row-major lower triangle
            self.Part_ids = part
            self.Mean_Distances = np.array(SMPL_MEAN_DISTANCES)
            self.CoarseParts = np.array(SMPL_COARSE_PARTS)

    class Quantized:
        def __init__(self, iuv):
            self.labels_uv_uint8 = torch.from_numpy(iuv)

    data = json.loads((work / "set.json").read_text())
    dts = [{"image_id": r["image_id"], "category_id": r["category_id"], "bbox": r["bbox"], "score": r["score"],
            "densepose": Quantized(np.asarray(Image.open(io.BytesIO(base64.b64decode(r["uv_data"])))).transpose(2, 0, 1).copy())}
           for r in data["records"]]
    out = {}
    for min_iou in data["min_ious"]:
        for mode in ("GPS", "GPSM", "IOU"):
            with contextlib.redirect_stdout(io.StringIO()):
                gt = COCO()
                gt.dataset = json.loads(json.dumps(data["gt"]))
                gt.createIndex()
                ev = Eval(gt, gt.loadRes(dts), "densepose", dpEvalMode=getattr(d2.DensePoseEvalMode, mode))
                ev.params.iouThrs = np.linspace(min_iou, 0.95, int(np.round((0.95 - min_iou) / 0.05)) + 1, endpoint=True)
                ev.evaluate()
                ev.accumulate()
                ev.summarize()
            out[f"{min_iou}-{mode}"] = [float(v) for v in ev.stats]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
