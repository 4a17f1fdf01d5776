"""The protocol options against independent computations: --exact, --kappa smpl, --min-iou, ignore
regions; AP accumulation against pycocotools' COCOeval; frozen metrics of a noisy set."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from densepose.evaluation import evaluate
from densepose.evaluation.cells import make_cells
from densepose.evaluation.evaluator import load_gt
from densepose.evaluation.matching import AREA_RANGES, accumulate_cells, iou_thresholds, summarize
from densepose.evaluation.results import load_results
from densepose.evaluation.scoring import PairScorer
from densepose.evaluation.synthetic import detections_to_records, make_synthetic_set
from densepose.modeling.ops.boxes import box_iou_xywh

from test_evaluation_gps import _planar_surface

#: The official evaluator's constants, typed here from its source (``Mean_Distances``, ``CoarseParts``).
SMPL_MEAN_DISTANCES = [0, 0.351, 0.107, 0.126, 0.237, 0.173, 0.142, 0.128, 0.150]
SMPL_COARSE_PARTS = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 8, 8]
GRID = 8  # _planar_surface(9): chart vertices every 1/8 in U and V
CHART_SIZE = 0.4  # metres


@pytest.fixture(scope="module")
def planar():
    s = _planar_surface()
    s.kappa_groups = np.full(9, 0.5)  # "per-part" on this surface: 0.5 m everywhere, unlike SMPL's
    return s


def _one_pair(surface, seed, noise=0.03):
    gt, dets = make_synthetic_set(surface, num_images=1, people_per_image=(1, 1), num_points=60, uv_noise=noise,
                                  seed=seed)
    return gt, detections_to_records(dets), dets[0]


def _scored_gps(surface, gt, records, kappa="per-part", exact=False) -> float:
    coco, dets = load_gt(gt), load_results(records)
    cells = make_cells(coco, dets, [1], Counter())
    scorer = PairScorer(surface, kappa, exact, dets, pointwise_min_iou=0.5, chunk_points=1 << 20,
                        warnings=Counter(), iou_floor=0.2)
    scorer.run(cells)
    (cell,) = cells
    return float(cell.gps[0, 0])


def _expected_gps(gt, det, kappa_of_chart, exact: bool) -> float:
    """Per point, written out: the GT point's pixel in the detection, the prediction there, the
    distance on the planar charts (snapped to the 1/8 grid unless exact), the Gaussian score."""
    (a,) = [a for a in gt["annotations"] if "dp_x" in a]
    x, y, w, h = a["bbox"]
    dx, dy = det.bbox[0], det.bbox[1]
    total = 0.0
    for px_, py_, I, U, V in zip(a["dp_x"], a["dp_y"], a["dp_I"], a["dp_U"], a["dp_V"]):
        px, py = int(px_ * w / 255.0 + x - dx), int(py_ * h / 255.0 + y - dy)
        pI, pU, pV = (int(c) for c in det.iuv[:, py, px])
        if pI == 0:
            continue
        g, p = np.array([U, V]), np.array([pU, pV]) / 255.0
        if not exact:
            g, p = np.round(g * GRID) / GRID, np.round(p * GRID) / GRID
        d = np.hypot(CHART_SIZE * np.linalg.norm(g - p), 10.0 * (pI - int(I)))
        total += np.exp(-d * d / (2.0 * kappa_of_chart(int(I)) ** 2))
    return total / len(a["dp_x"])


def test_exact_and_snapped_gps_differ_and_match_independent_values(planar):
    gt, records, det = _one_pair(planar, seed=3)
    snapped = _scored_gps(planar, gt, records, kappa="smpl", exact=False)
    exact = _scored_gps(planar, gt, records, kappa="smpl", exact=True)
    kappa = lambda i: SMPL_MEAN_DISTANCES[SMPL_COARSE_PARTS[i]]  # noqa: E731
    assert snapped == pytest.approx(_expected_gps(gt, det, kappa, exact=False), abs=1e-9)
    assert exact == pytest.approx(_expected_gps(gt, det, kappa, exact=True), abs=1e-9)
    assert abs(exact - snapped) > 0.005


def test_exact_flag_reaches_the_metrics(planar):
    gt, records, _ = _one_pair(planar, seed=4, noise=0.08)
    a = evaluate(gt, records, planar, kappa="smpl", exact=False, coco_metrics=False)
    b = evaluate(gt, records, planar, kappa="smpl", exact=True, coco_metrics=False)
    assert b["settings"]["exact"] and not a["settings"]["exact"]
    assert a["pointwise"]["curve_ratio"] != b["pointwise"]["curve_ratio"]


def test_kappa_smpl_uses_the_official_constants(planar):
    gt, records, det = _one_pair(planar, seed=5, noise=0.06)
    smpl = _scored_gps(planar, gt, records, kappa="smpl")
    per_part = _scored_gps(planar, gt, records, kappa="per-part")
    expected = _expected_gps(gt, det, lambda i: SMPL_MEAN_DISTANCES[SMPL_COARSE_PARTS[i]], exact=False)
    assert smpl == pytest.approx(expected, abs=1e-9)
    assert per_part == pytest.approx(_expected_gps(gt, det, lambda i: 0.5, exact=False), abs=1e-9)
    assert abs(smpl - per_part) > 1e-3


# ----------------------------------------------------------------------------- --min-iou
def test_min_iou_thresholds_and_low_ap_columns():
    assert np.array_equal(iou_thresholds(0.5), np.linspace(0.5, 0.95, 10))
    t = iou_thresholds(0.3)
    assert len(t) == 14 and t[0] == pytest.approx(0.3) and t[-1] == pytest.approx(0.95)
    # one image, one person, one detection of similarity 0.37: matched at 0.30 and 0.35 only
    cell = dict(sims=np.array([[[0.37]]]), box_iou=np.array([[0.9]]), gt_ignore=np.array([False]),
                gt_area=np.array([5000.0]), gt_crowd=np.array([False]), dt_area=np.array([5000.0]),
                dt_score=np.array([0.9]))
    areas = [AREA_RANGES[a] for a in AREA_RANGES]
    precision, recall = accumulate_cells([cell], areas, np.array([0]), 1, thresholds=t)
    out = summarize({a: (precision[0, i], recall[0, i]) for i, a in enumerate(AREA_RANGES)}, t)
    assert list(out)[:5] == ["AP", "AP30", "AP40", "AP50", "AP75"] and "AP20" not in out
    assert out["AP"] == pytest.approx(2 / 14) and out["AP30"] == pytest.approx(1.0) and out["AP40"] == 0.0
    assert out["AR"] == pytest.approx(2 / 14)
    precision, recall = accumulate_cells([cell], areas, np.array([0]), 1)
    assert summarize({a: (precision[0, i], recall[0, i]) for i, a in enumerate(AREA_RANGES)})["AP"] == 0.0


def test_min_iou_end_to_end(planar):
    gt, records, _ = _one_pair(planar, seed=6, noise=0.2)
    m5 = evaluate(gt, records, planar, coco_metrics=False)
    m2 = evaluate(gt, records, planar, min_iou=0.2, coco_metrics=False)
    assert list(m5["densepose"]["gps"])[:2] == ["AP", "AP50"]
    assert list(m2["densepose"]["gps"])[:4] == ["AP", "AP20", "AP30", "AP40"]
    for mode in ("gps", "gpsm", "iou"):
        assert m2["densepose"][mode]["AP50"] == m5["densepose"][mode]["AP50"]
        assert m2["densepose"][mode]["AP20"] >= m2["densepose"][mode]["AP50"]


# ----------------------------------------------------------------------------- ignore regions
def _box_polygon(b, pad=0.0):
    x, y, w, h = b
    return [x - pad, x + w + pad, x + w + pad, x - pad], [y - pad, y - pad, y + h + pad, y + h + pad]


def test_ignore_regions_drop_covered_people_and_detections(planar):
    for seed in range(100):  # the first set whose person 0 overlaps nobody (the region must not touch the others)
        gt, dets = make_synthetic_set(planar, num_images=1, people_per_image=(3, 3), num_points=30, uv_noise=0.0,
                                      false_positives=0, seed=seed)
        missed, kept = gt["annotations"][0], gt["annotations"][1:]
        if all(box_iou_xywh(np.array(a["bbox"]), np.array(missed["bbox"])) == 0 for a in kept):
            break
    records = detections_to_records(dets)
    records = [r for r, d in zip(records, dets) if d.gt_id != missed["id"]]  # person 0 is missed
    far = [600.0, 400.0, 30.0, 60.0]  # a confident false positive in a free corner
    records.append(dict(records[0], bbox=far, score=0.99, uv_shape=[3, 60, 30],
                        uv_data=detections_to_records([type(dets[0])(1, far, 0.99, np.full((3, 60, 30), 5, np.uint8), None)])[0]["uv_data"]))
    base = evaluate(gt, records, planar, coco_metrics=False)
    assert base["densepose"]["iou"]["AR"] < 1.0 and base["densepose"]["iou"]["AP"] < 1.0
    xs, ys = zip(_box_polygon(missed["bbox"]), _box_polygon(far, pad=1.0))
    gt["images"][0]["ignore_regions_x"], gt["images"][0]["ignore_regions_y"] = list(xs), list(ys)
    m = evaluate(gt, records, planar, coco_metrics=False)
    assert m["counts"]["gt_in_ignore_regions"] == 1 and m["counts"]["detections_in_ignore_regions"] == 1
    assert m["densepose"]["iou"]["AP"] == pytest.approx(1.0) and m["densepose"]["iou"]["AR"] == pytest.approx(1.0)


def test_ignore_region_box_rule_is_the_reference_threshold():
    from densepose.evaluation.ignore_regions import keep_detection, keep_gt

    region = np.zeros((100, 100), np.uint8)
    region[:, :35] = 1  # covers 35 of a 50-wide box starting at x = 0: 70 %
    assert not keep_gt(region, [{"bbox": [0, 10, 50, 20]}])[0]
    assert keep_gt(region, [{"bbox": [1, 10, 50, 20]}])[0]  # 34 of 50: 68 %
    assert not keep_gt(region, [{"bbox": [40.5, 10, 0.9, 20]}])[0]  # empty integer box
    iuv = np.zeros((3, 20, 50), np.uint8)
    iuv[0, :, :36] = 1  # 36 foreground columns, 35 of them in the region: 97 %
    assert not keep_detection(region, [0, 10, 50, 20], iuv)
    iuv[0, :, :] = 1  # 35 of 50 columns: 70 % < 90 %
    assert keep_detection(region, [0, 10, 50, 20], iuv)


# ----------------------------------------------------------------------------- against pycocotools
def test_accumulation_matches_pycocotools_on_boxes():
    """Greedy matching, precision envelope and recall of our accumulation equal COCOeval's on box
    IoU, area range "all" (every image has ground truth and nobody is ignored: there the two
    protocols coincide; in the other ranges DensePose ignores the detections of an image whose
    people are all out of range, COCO counts them)."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(0)
    images, anns, dts, cells, cats = [], [], [], [], []
    for i in range(1, 41):
        images.append({"id": i, "height": 500, "width": 500})
        G, D = int(rng.integers(1, 5)), int(rng.integers(0, 9))
        gb = np.c_[rng.uniform(0, 300, (G, 2)), rng.uniform(20, 160, (G, 2))]
        cat = int(rng.integers(1, 3))
        # detections: jittered copies of GT boxes (some poor) and strays
        src = rng.integers(0, G, D)
        db = gb[src] + rng.normal(0, 1, (D, 4)) * np.r_[8, 8, 10, 10] * rng.uniform(0.2, 3, (D, 1))
        db[:, 2:] = np.abs(db[:, 2:]) + 1
        score = rng.uniform(0, 1, D)
        area = gb[:, 2] * gb[:, 3] * rng.uniform(0.5, 1.0, G)
        for j in range(G):
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cat, "bbox": gb[j].tolist(),
                         "area": float(area[j]), "iscrowd": 0})
        for k in range(D):
            dts.append({"image_id": i, "category_id": cat, "bbox": db[k].tolist(), "score": float(score[k])})
        order = np.argsort(-score, kind="mergesort")
        iou = box_iou_xywh(db[order][:, None], gb[None], np.zeros((1, G), bool))
        cells.append(dict(sims=iou[None], box_iou=iou, gt_ignore=np.zeros(G, bool), gt_area=area,
                          gt_crowd=np.zeros(G, bool), dt_area=db[order, 2] * db[order, 3], dt_score=score[order]))
        cats.append(cat - 1)
    areas = [AREA_RANGES[a] for a in AREA_RANGES]
    precision, recall = accumulate_cells(cells, areas, np.array(cats), 2)

    with contextlib.redirect_stdout(io.StringIO()):
        cgt = COCO()
        cgt.dataset = {"images": images, "annotations": anns,
                       "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
        cgt.createIndex()
        ev = COCOeval(cgt, cgt.loadRes(dts), "bbox")
        ev.params.areaRng = [list(r) for r in areas]
        ev.params.areaRngLbl = list(AREA_RANGES)
        ev.params.maxDets = [20]
        ev.evaluate()
        ev.accumulate()
    ref_p = ev.eval["precision"][:, :, :, 0, 0]  # (T, R, K), area "all", maxDets 20
    ref_r = ev.eval["recall"][:, :, 0, 0]  # (T, K)
    assert np.array_equal(precision[0, 0], ref_p)
    assert np.array_equal(recall[0, 0], ref_r)
    assert ((ref_p > 0) & (ref_p < 1)).mean() > 0.1 and (ref_r < 1).all()  # the envelope is exercised


# ----------------------------------------------------------------------------- frozen numbers
def _noisy_set(surface):
    """A set with what real data has: UV noise, shifted and fractional boxes, false positives,
    people without DensePose, a crowd region, a missing area, segmentation instead of dp_masks."""
    gt, dets = make_synthetic_set(surface, num_images=8, people_per_image=(1, 3), num_points=40, uv_noise=0.2,
                                  false_positives=2, unannotated_per_image=1, seed=17)
    records = detections_to_records(dets)
    rng = np.random.default_rng(17)
    for r in records[::3]:
        r["bbox"] = [r["bbox"][0] + float(rng.uniform(-1.5, 1.5)), r["bbox"][1] + float(rng.uniform(-1.5, 1.5)),
                     r["bbox"][2] + 0.4, r["bbox"][3] + 0.3]
    for r in records[1::4]:
        r["score"] = float(rng.uniform(0.0, 1.0))
    gt["annotations"][2]["iscrowd"] = 1
    gt["annotations"][4].pop("area")
    for a in gt["annotations"][5::4]:
        a.pop("dp_masks", None)
    return gt, records


#: Metrics of ``_noisy_set`` (kappa smpl), computed by this evaluator and, identically, by the version
#: before the evaluator's split; a change in any of them is a change of the protocol.
FROZEN = {
    'gps.AP': 0.4153805086390992, 'gps.AP50': 0.6599689380702775, 'gps.AP75': 0.4562706270627062,
    'gps.APm': 0.0, 'gps.APl': 0.48827514330380395, 'gps.AR': 0.545,
    'gps.AR50': 0.8, 'gps.AR75': 0.7, 'gps.ARm': 0.0,
    'gps.ARl': 0.6055555555555555, 'gpsm.AP': 0.5533876917103475, 'gpsm.AP50': 0.6599689380702775,
    'gpsm.AP75': 0.6599689380702775, 'gpsm.APm': 0.0, 'gpsm.APl': 0.6457529963522667,
    'gpsm.AR': 0.6900000000000001, 'gpsm.AR50': 0.8, 'gpsm.AR75': 0.8,
    'gpsm.ARm': 0.0, 'gpsm.ARl': 0.7666666666666666, 'iou.AP': 0.9562706270627062,
    'iou.AP50': 0.9633663366336631, 'iou.AP75': 0.9633663366336631, 'iou.APm': 0.9504950495049505,
    'iou.APl': 0.9708181344450235, 'iou.AR': 0.9949999999999999, 'iou.AR50': 1.0,
    'iou.AR75': 1.0, 'iou.ARm': 0.95, 'iou.ARl': 1.0,
    'pointwise.auc10': 0.214221875, 'pointwise.auc30': 0.5641156249999999, 'bbox.AP': 0.674717357319256,
}


def test_frozen_metrics_on_a_noisy_set(planar):
    gt, records = _noisy_set(planar)
    m = evaluate(gt, records, planar, kappa="smpl", coco_metrics=True)
    got = {f"{mode}.{k}": v for mode, row in m["densepose"].items() for k, v in row.items()}
    got.update({"pointwise.auc10": m["pointwise"]["auc10"], "pointwise.auc30": m["pointwise"]["auc30"],
                "bbox.AP": m["coco"]["bbox"]["AP"]})
    assert got == pytest.approx(FROZEN, abs=1e-12)
