"""COCO-style matching and accumulation of the DensePose protocol, on hand-made similarity matrices."""
from __future__ import annotations

import numpy as np
import pytest

from densepose.evaluation.matching import (
    AREA_RANGES,
    IOU_THRESHOLDS,
    accumulate,
    accumulate_cells,
    evaluate_image,
    match_images,
    summarize,
)
from densepose.modeling.ops.boxes import box_iou_xywh

ALL = AREA_RANGES["all"]


def _img(sim, box=None, ignore=None, area=None, crowd=None, dt_area=None, scores=None, rng=ALL):
    sim = np.asarray(sim, dtype=float)
    D, G = sim.shape
    return evaluate_image(
        sim, np.zeros((D, G)) if box is None else np.asarray(box, float),
        np.zeros(G, bool) if ignore is None else np.asarray(ignore, bool),
        np.full(G, 1e4) if area is None else np.asarray(area, float),
        np.zeros(G, bool) if crowd is None else np.asarray(crowd, bool),
        np.full(D, 1e4) if dt_area is None else np.asarray(dt_area, float),
        np.linspace(1.0, 0.5, D) if scores is None else np.asarray(scores, float), rng)


def _ap(*evals, **image):
    """Summary of the given image evaluations, or of ``_img(**image)`` redone per area range."""
    if image:
        return summarize({a: accumulate([[_img(**image, rng=r)]]) for a, r in AREA_RANGES.items()})
    return summarize({a: accumulate([list(evals)]) for a in AREA_RANGES})


def test_single_match_ap_is_fraction_of_thresholds():
    # One GT, one detection with similarity 0.72: matched at 0.50..0.70 (5 of 10 thresholds).
    m = _ap(sim=[[0.72]])
    assert m["AP"] == pytest.approx(0.5)
    assert m["AP50"] == pytest.approx(1.0) and m["AP75"] == 0.0
    assert m["AR"] == pytest.approx(0.5)
    assert m["APm"] == -1.0  # area 1e4 is "large": no medium GT at all
    assert m["APl"] == pytest.approx(0.5)


def test_greedy_by_score_and_best_match():
    # Two detections, two GT. The top detection takes GT 1 (its best), the second gets GT 0.
    e = _img([[0.6, 0.9], [0.8, 0.95]])
    t50 = 0
    assert e.matched[t50].tolist() == [True, True]
    # At 0.85 only the first detection matches (GT 1); the second's 0.95 GT is taken, 0.8 < 0.85.
    t85 = int(np.argmin(np.abs(IOU_THRESHOLDS - 0.85)))
    assert e.matched[t85].tolist() == [True, False]


def test_tie_goes_to_the_later_ground_truth():
    e = _img([[0.7, 0.7]])
    e2 = _img([[0.7, 0.7], [0.7, 0.0]])
    # The first detection takes GT 1 (the later of two equals), so the second can still take GT 0.
    assert e.matched[0].tolist() == [True]
    assert e2.matched[0].tolist() == [True, True]


def test_zero_similarity_never_matches():
    e = _img([[0.0]])
    assert not e.matched.any()


def test_regular_ground_truth_before_ignored():
    # GT 0 ignored (no DensePose) but more similar; the detection must match the regular GT 1.
    e = _img([[0.9, 0.6]], ignore=[True, False])
    assert e.matched[0, 0] and not e.ignored[0, 0]
    # At 0.65..0.90 the regular GT no longer qualifies; the ignored one is taken, the detection ignored.
    assert e.matched[4, 0] and e.ignored[4, 0]
    assert not e.matched[-1, 0]


def test_box_rule_ignores_unmatched_detection_on_ignored_gt():
    # Detection 1 has no similarity to anything but box IoU 0.85 with the ignored GT.
    e = _img([[0.97, 0.0], [0.0, 0.0]], box=[[1.0, 0.0], [0.0, 0.85]], ignore=[False, True])
    assert e.ignored[:, 1].all()
    m = _ap(e)
    assert m["AP"] == pytest.approx(1.0)
    # Below 0.8 it stays a false positive (it is the lower-scored one: precision 1 up to recall 1).
    e = _img([[0.0, 0.0], [0.97, 0.0]], box=[[0.0, 0.79], [1.0, 0.0]], ignore=[False, True])
    assert not e.ignored[:, 0].any()
    assert _ap(e)["AP"] == pytest.approx(0.5, abs=0.01)


def test_box_rule_can_unignore_at_every_threshold():
    # The reference quirk: a detection matched to an ignored GT at low thresholds, unmatched at
    # 0.95, with box IoU >= 0.8 to a *regular* unmatched GT, takes that GT's flag (not ignored) at
    # all thresholds -- while keeping its matches.
    e = _img([[0.0, 0.7]], box=[[0.9, 0.0]], ignore=[False, True])
    # gt order after sorting: regular first -> GT 0 regular, GT 1 ignored.
    assert e.matched[0, 0] and not e.matched[-1, 0]
    assert not e.ignored[:, 0].any()


def test_all_ignored_image_and_empty_image():
    e = _img([[0.0]], ignore=[True])
    assert e.ignored.all()
    e = evaluate_image(np.zeros((2, 0)), np.zeros((2, 0)), np.zeros(0, bool), np.zeros(0), np.zeros(0, bool),
                       np.full(2, 1e4), np.array([0.9, 0.8]), ALL)
    assert e.ignored.all()
    assert evaluate_image(np.zeros((0, 0)), np.zeros((0, 0)), np.zeros(0, bool), np.zeros(0), np.zeros(0, bool),
                          np.zeros(0), np.zeros(0), ALL) is None


def test_area_range():
    # A medium GT and a large unmatched detection: in "medium" the GT counts, the FP is ignored.
    e = _img([[0.99], [0.0]], area=[40.0 ** 2], dt_area=[40.0 ** 2, 200.0 ** 2],
             rng=AREA_RANGES["medium"])
    assert not e.gt_ignored[0]
    assert e.ignored[:, 1].all() and not e.ignored[:, 0].any()
    e = _img([[0.99]], area=[40.0 ** 2], rng=AREA_RANGES["large"])
    assert e.gt_ignored[0]


def test_crowd_can_match_many():
    e = _img([[0.97], [0.97]], crowd=[True])
    assert e.matched.all()


def test_box_iou_matches_pycocotools():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    dt = np.c_[rng.uniform(0, 50, (7, 2)), rng.uniform(1, 40, (7, 2))]
    gt = np.c_[rng.uniform(0, 50, (5, 2)), rng.uniform(1, 40, (5, 2))]
    crowd = np.array([0, 1, 0, 0, 1], dtype=bool)
    ref = mask_utils.iou(dt.tolist(), gt.tolist(), crowd.astype(np.uint8).tolist())
    assert np.array_equal(box_iou_xywh(dt[:, None], gt[None], crowd[None]), ref)  # bit for bit


def _naive_image(sim, box, ig, crowd, dt_out):
    """A direct, loop-by-loop transcription of the protocol text, as an oracle."""
    D, G = sim.shape
    T = len(IOU_THRESHOLDS)
    order = np.argsort(ig, kind="mergesort")
    sim, box, ig, crowd = sim[:, order], box[:, order], ig[order], crowd[order]
    gtm = -np.ones((T, G), int)
    dtm = -np.ones((T, D), int)
    dtig = np.zeros((T, D), bool) | bool(np.all(ig))
    if D and G:
        for t, thr in enumerate(IOU_THRESHOLDS):
            for d in range(D):
                best, m = min(thr, 1 - 1e-10), -1
                for g in range(G):
                    if gtm[t, g] >= 0 and not crowd[g]:
                        continue
                    if m > -1 and not ig[m] and ig[g]:
                        break
                    if sim[d, g] < best or sim[d, g] == 0:
                        continue
                    best, m = sim[d, g], g
                if m >= 0:
                    dtig[t, d], dtm[t, d], gtm[t, m] = ig[m], m, d
        t = T - 1
        for d in range(D):
            if dtm[t, d] < 0:
                best, m = 0.8, -1
                for g in range(G):
                    if gtm[t, g] >= 0 and not crowd[g]:
                        continue
                    if box[d, g] < best:
                        continue
                    best, m = box[d, g], g
                if m > -1:
                    dtig[:, d] = ig[m]
                    if ig[m]:
                        dtm[t, d], gtm[t, m] = m, d
    dtig |= (dtm < 0) & dt_out[None, :]
    return dtm >= 0, dtig


def test_vectorised_matching_equals_loop_oracle():
    rng = np.random.default_rng(1)
    for _ in range(300):
        D, G = int(rng.integers(0, 6)), int(rng.integers(1, 5))
        sim = np.round(rng.uniform(0, 1, (D, G)) * rng.integers(0, 2, (D, G)), 2)
        box = np.round(rng.uniform(0.6, 1.0, (D, G)), 2)
        ig = rng.uniform(size=G) < 0.3
        crowd = rng.uniform(size=G) < 0.1
        dt_area = rng.choice([40.0 ** 2, 200.0 ** 2], D)
        e = evaluate_image(sim, box, ig, np.full(G, 200.0 ** 2), crowd, dt_area, np.linspace(1, 0.1, D),
                           AREA_RANGES["large"])
        matched, ignored = _naive_image(sim, box, ig, crowd, dt_area < 96.0 ** 2)
        assert (e.matched == matched).all() and (e.ignored == ignored).all()


def test_batched_matching_equals_per_image():
    rng = np.random.default_rng(2)
    ranges = list(AREA_RANGES.values())
    cells = []
    for _ in range(120):
        D, G = int(rng.integers(0, 8)), int(rng.integers(0, 6))
        sims = np.round(rng.uniform(0, 1, (3, D, G)) * rng.integers(0, 2, (3, D, G)), 2)  # ties and zeros
        cells.append(dict(
            sims=sims, box_iou=np.round(rng.uniform(0.5, 1.0, (D, G)), 2),
            gt_ignore=rng.uniform(size=G) < 0.3, gt_area=rng.choice([20.0 ** 2, 60.0 ** 2, 200.0 ** 2], G),
            gt_crowd=rng.uniform(size=G) < 0.15, dt_area=rng.choice([20.0 ** 2, 60.0 ** 2, 200.0 ** 2], D),
            dt_score=np.sort(rng.uniform(size=D))[::-1]))
    batched = match_images(cells, ranges, batch=50)  # several batches with different padding
    single = match_images(cells, ranges, batch=1)  # no padding at all
    for got, ref in zip(batched, single):
        assert (got is None) == (ref is None)
        if ref is None:
            continue
        for gm, rm in zip(got, ref):
            for g, r in zip(gm, rm):
                assert np.array_equal(g.matched, r.matched) and np.array_equal(g.ignored, r.ignored)
                assert np.array_equal(g.gt_ignored, r.gt_ignored) and np.array_equal(g.scores, r.scores)


def test_accumulate_cells_equals_match_images_then_accumulate():
    rng = np.random.default_rng(3)
    ranges = list(AREA_RANGES.values())
    cells = []
    for _ in range(150):
        D, G = int(rng.integers(0, 8)), int(rng.integers(0, 6))
        sims = np.round(rng.uniform(0, 1, (3, D, G)) * rng.integers(0, 2, (3, D, G)), 2)
        cells.append(dict(
            sims=sims, box_iou=np.round(rng.uniform(0.5, 1.0, (D, G)), 2),
            gt_ignore=rng.uniform(size=G) < 0.3, gt_area=rng.choice([20.0 ** 2, 60.0 ** 2, 200.0 ** 2], G),
            gt_crowd=rng.uniform(size=G) < 0.15, dt_area=rng.choice([20.0 ** 2, 60.0 ** 2, 200.0 ** 2], D),
            dt_score=np.round(rng.uniform(size=D), 1)))  # score ties across images
    category = rng.integers(0, 3, len(cells))  # category 2 ... and a fourth without any cell
    precision, recall = accumulate_cells(cells, ranges, category, 4, batch=40)
    evals = match_images(cells, ranges)
    for m in range(3):
        for a in range(len(ranges)):
            per_cat = [[e[m][a] if e is not None else None for e, c in zip(evals, category) if c == k] for k in range(4)]
            p, r = accumulate(per_cat)
            assert np.array_equal(precision[m, a], p) and np.array_equal(recall[m, a], r)
