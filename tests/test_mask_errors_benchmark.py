"""benchmarks/mask_errors.py: the evaluator's true silhouette, and where wrong pixels are counted."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # its score() imports real_photos as the script does
_spec = importlib.util.spec_from_file_location("mask_errors", REPO / "benchmarks" / "mask_errors.py")
mask_errors = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mask_errors)


def _annotation(bbox: list[float]) -> dict:
    from densepose.data.rle import encode_dp_masks

    labels = np.zeros((256, 256), dtype=np.uint8)
    labels[40:200, 70:180] = 1  # torso
    labels[200:250, 80:120] = 5  # a leg
    return {"bbox": bbox, "dp_masks": encode_dp_masks(labels)}


def test_true_silhouette_is_the_evaluators_ground_truth_mask():
    """A detection whose body is exactly `true_silhouette` inside the box scores mask IoU 1 with
    the evaluator's own pairing (`densepose.evaluation.mask_iou.pair_ious`), boxes at fractional
    pixels and partly outside the image included; one pixel less scores below 1."""
    from densepose.evaluation.mask_iou import pair_ious
    from densepose.evaluation.results import expected_uv_hw

    h, w = 120, 90
    for bbox in ([10.6, 5.3, 50.2, 97.9], [60.4, 30.0, 45.0, 100.0]):
        ann = _annotation(bbox)
        truth = mask_errors.true_silhouette(ann, h, w)
        assert truth.any() and not truth[:, :10].any()
        uh, uw = expected_uv_hw(np.array([bbox]))[0]
        x0, y0 = int(bbox[0]), int(bbox[1])
        iuv = np.zeros((3, uh, uw), dtype=np.uint8)
        crop = truth[y0 : y0 + uh, x0 : x0 + uw]
        iuv[0, : crop.shape[0], : crop.shape[1]] = crop
        def iou(iuv_k):
            return pair_ious([ann], np.array([[h, w]]), lambda j: "gt", np.array([bbox]), np.array([[h, w]]),
                             lambda k: iuv_k, np.array([0]), np.array([0]))[0]
        assert iou(iuv) == 1.0
        ys, xs = np.nonzero(iuv[0])
        iuv[0, ys[0], xs[0]] = 0
        assert iou(iuv) < 1.0


def test_each_wrong_pixel_falls_in_one_kind():
    """A 20 x 20 person seen one pixel too wide on the left, with a far blob on nobody, body drawn
    on a neighbour, a 2-pixel bite out of the outline and a hole in the middle."""
    truth = np.zeros((60, 80), dtype=bool)
    truth[20:40, 20:40] = True
    others = np.zeros_like(truth)
    others[20:40, 50:60] = True
    seen = truth.copy()
    seen[20:40, 19] = True  # extra, near (1 px out): 20
    seen[2:5, 2:5] = True  # extra, far: 9
    seen[25:30, 50:54] = True  # extra, on another person: 20
    seen[38:40, 30:35] = False  # missed, near (the bottom rows): 10
    seen[28:32, 28:32] = False  # missed, far (8 px inside): 16
    kinds = mask_errors.error_kinds(seen, truth, others)
    assert kinds == {"extra, on another person": 20, "extra, near": 20, "extra, far": 9,
                     "missed, near": 10, "missed, far": 16}


def test_shares_are_means_over_people_by_height():
    rows = [(50.0, 100.0, dict.fromkeys(mask_errors.KINDS, 10)), (300.0, 1000.0, dict.fromkeys(mask_errors.KINDS, 0))]
    out = mask_errors.summarise(rows, [0.5, 1.0])
    assert out["people"] == 2 and out["mask_iou"] == 0.75
    assert out["extra, far"] == 0.05
    assert out["by_height"]["0-64"]["people"] == 1 and out["by_height"]["0-64"]["missed, near"] == 0.1
    assert out["by_height"]["256-100000"]["extra, near"] == 0.0 and out["by_height"]["64-128"]["people"] == 0
