"""The evaluator end to end on small generated data: perfect predictions, UV noise, ignore rules."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from densepose.data.uv_encoding import decode_uv_data
from densepose.evaluation import evaluate
from densepose.evaluation.results import load_results, write_results_npz
from densepose.evaluation.synthetic import detections_to_records, make_synthetic_set
from densepose.surface.base import BodySurface
from densepose.surface.parts import NUM_CHARTS, OFFICIAL_SMPL_KAPPA

#: Three records of the official example results, shipped with the tests (tests/data/LICENSES.md).
OFFICIAL_SUBSET = Path(__file__).parent / "data" / "official_example_results_subset.json"


class _PlanarGeodesics:
    """Exact geodesics of `_planar_surface`: straight lines inside a patch, far across patches."""

    def __init__(self, vertices, faces):
        self.vertices, self.faces = vertices, faces

    def between_vertices(self, a, b):
        return np.linalg.norm(self.vertices[np.asarray(a)] - self.vertices[np.asarray(b)], axis=1)

    def between_points(self, fa, ba, fb, bb):
        pa = np.einsum("nk,nkc->nc", ba, self.vertices[self.faces[fa]])
        pb = np.einsum("nk,nkc->nc", bb, self.vertices[self.faces[fb]])
        return np.linalg.norm(pa - pb, axis=1)


def _planar_surface(n: int = 9, size: float = 0.4) -> BodySurface:
    """24 flat square charts (0.4 m), 10 m apart: geodesics are exact Euclidean distances."""
    g = np.linspace(0.0, 1.0, n)
    uu, vv = np.meshgrid(g, g)
    uv = np.stack([uu.ravel(), vv.ravel()], 1)
    q = np.arange(n * n).reshape(n, n)
    tri = np.concatenate([np.stack([q[:-1, :-1], q[:-1, 1:], q[1:, 1:]], -1).reshape(-1, 3),
                          np.stack([q[:-1, :-1], q[1:, 1:], q[1:, :-1]], -1).reshape(-1, 3)])
    verts, faces, part = [], [], []
    for c in range(NUM_CHARTS):
        verts.append(np.c_[uv * size, np.full(len(uv), 10.0 * c)])
        faces.append(tri + c * len(uv))
        part.append(np.full(len(tri), c + 1))
    verts, faces = np.concatenate(verts), np.concatenate(faces)
    return BodySurface(
        name="planar", vertices=verts, faces=faces, face_part=np.concatenate(part), chart_faces=faces.copy(),
        chart_uv=np.tile(uv, (NUM_CHARTS, 1)), chart_vertex_mesh=np.arange(len(verts)),
        kappa_groups=OFFICIAL_SMPL_KAPPA.copy(), geodesic_factory=lambda s: _PlanarGeodesics(s.vertices, s.faces),
    )


@pytest.fixture(scope="module")
def surface(request):
    try:
        return request.getfixturevalue("sphere_surface")
    except pytest.FixtureLookupError:
        return _planar_surface()


def _ap(metrics, mode):
    return metrics["densepose"][mode]["AP"]


def test_perfect_prediction_gives_ap_one(surface):
    gt, dets = make_synthetic_set(surface, num_images=3, num_points=60, seed=1)
    m = evaluate(gt, detections_to_records(dets), surface, coco_metrics=False)
    for mode in ("gps", "gpsm", "iou"):
        for key in ("AP", "AP50", "AP75", "AR"):
            assert m["densepose"][mode][key] == pytest.approx(1.0), (mode, key)
    assert m["pointwise"]["ratio_at_cm"]["1"] == 1.0
    assert m["pointwise"]["auc10"] == pytest.approx(1.0, abs=1e-3)
    assert m["counts"]["pairs"] > 0


def _expected_gps(surface, gt_ann, iuv, kappa_mode="per-part"):
    """GPS of a detection exactly on the GT box, straight from the surface's own geodesics."""
    w, h = gt_ann["bbox"][2], gt_ann["bbox"][3]
    px = (np.array(gt_ann["dp_x"]) * w / 255.0).astype(int)
    py = (np.array(gt_ann["dp_y"]) * h / 255.0).astype(int)
    I = np.array(gt_ann["dp_I"], dtype=int)
    gv = surface.snap_to_mesh_vertex(I, np.c_[gt_ann["dp_U"], gt_ann["dp_V"]])
    pI = iuv[0, py, px].astype(int)
    pv = surface.snap_to_mesh_vertex(pI, np.c_[iuv[1, py, px], iuv[2, py, px]] / 255.0)
    g = surface.geodesics.between_vertices(gv, pv)
    k = surface.kappa_per_chart(kappa_mode)[I]
    return float(np.mean(np.exp(-g ** 2 / (2 * k ** 2))))


@pytest.mark.parametrize("kappa", ["per-part", "paper"])
def test_uv_noise_gives_expected_gps(surface, kappa):
    # One person, one detection on its box: the GPS AP is the fraction of thresholds below GPS.
    gt, dets = make_synthetic_set(surface, num_images=1, people_per_image=(1, 1), num_points=80,
                                  uv_noise=0.08, seed=3)
    gps = _expected_gps(surface, gt["annotations"][0], dets[0].iuv, kappa)
    assert 0.05 < gps < 0.99
    m = evaluate(gt, detections_to_records(dets), surface, kappa=kappa, coco_metrics=False)
    thresholds = np.linspace(0.5, 0.95, 10)
    assert _ap(m, "gps") == pytest.approx(np.mean(gps >= thresholds))
    # Mask IoU is 1 here, so GPSm = sqrt(GPS).
    assert _ap(m, "gpsm") == pytest.approx(np.mean(np.sqrt(gps) >= thresholds))
    assert _ap(m, "iou") == pytest.approx(1.0)


def test_exact_mode_runs_and_perfect_is_one(surface):
    gt, dets = make_synthetic_set(surface, num_images=1, people_per_image=(2, 2), num_points=40, seed=4)
    m = evaluate(gt, detections_to_records(dets), surface, exact=True, coco_metrics=False)
    assert _ap(m, "gps") == pytest.approx(1.0)


def _one_person(surface, seed=5, **kw):
    return make_synthetic_set(surface, num_images=1, people_per_image=(1, 1), num_points=50, seed=seed, **kw)


def test_false_positive_lowers_precision(surface):
    gt, dets = _one_person(surface)
    fp = type(dets[0])(1, [0.0, 0.0, 50.0, 80.0], 0.99, np.ones((3, 80, 50), np.uint8), None)
    m = evaluate(gt, detections_to_records(dets + [fp]), surface, coco_metrics=False)
    # The FP scores higher than the TP: precision at recall 1 is 1/2 at every threshold.
    assert _ap(m, "gps") == pytest.approx(0.5, abs=0.01)
    assert m["densepose"]["gps"]["AR"] == pytest.approx(1.0)


def test_detection_on_unannotated_person_is_ignored(surface):
    # A second person without DensePose points; a detection exactly on it (box IoU 1 >= 0.8) must
    # not count as a false positive, even though it scores higher than the true positive.
    gt, dets = _one_person(surface, unannotated_per_image=1)
    other = next(a for a in gt["annotations"] if "dp_x" not in a)
    x, y, w, h = other["bbox"]
    on_other = type(dets[0])(1, [x, y, w, h], 0.999, np.zeros((3, h, w), np.uint8), None)
    m = evaluate(gt, detections_to_records(dets + [on_other]), surface, coco_metrics=False)
    assert _ap(m, "gps") == pytest.approx(1.0)
    assert _ap(m, "gpsm") == pytest.approx(1.0)
    # Shift it so that box IoU drops below 0.8: now it is a false positive (in GPS mode).
    shifted = type(dets[0])(1, [x + 0.3 * w, y, w, h], 0.999, np.zeros((3, h, w), np.uint8), None)
    m = evaluate(gt, detections_to_records(dets + [shifted]), surface, coco_metrics=False)
    assert _ap(m, "gps") == pytest.approx(0.5, abs=0.01)


def test_image_without_annotated_people_gives_no_false_positives(surface):
    gt, dets = make_synthetic_set(surface, num_images=2, people_per_image=(1, 1), num_points=30, seed=6)
    # Image 2 loses its DensePose annotation; its detection then costs nothing.
    for a in gt["annotations"]:
        if a["image_id"] == 2:
            for k in ("dp_x", "dp_y", "dp_I", "dp_U", "dp_V", "dp_masks"):
                a.pop(k)
    for d in dets:
        d.score = 0.99 if d.image_id == 2 else 0.6
    m = evaluate(gt, detections_to_records(dets), surface, coco_metrics=False)
    assert _ap(m, "gps") == pytest.approx(1.0)
    # An image with no ground truth at all behaves the same.
    gt["images"].append({"id": 3, "file_name": "x.png", "height": 480, "width": 640})
    extra = type(dets[0])(3, [10.0, 10.0, 40.0, 60.0], 0.999, np.ones((3, 60, 40), np.uint8), None)
    m = evaluate(gt, detections_to_records(dets + [extra]), surface, coco_metrics=False)
    assert _ap(m, "gps") == pytest.approx(1.0)


def test_points_outside_box_and_background_score_zero(surface):
    gt, dets = _one_person(surface, seed=7)
    d = dets[0]
    full = _expected_gps(surface, gt["annotations"][0], d.iuv)
    assert full == pytest.approx(1.0)
    # Background on the left half: those points score 0.
    iuv = d.iuv.copy()
    half = iuv.shape[2] // 2
    iuv[:, :, :half] = 0
    ann = gt["annotations"][0]
    px = (np.array(ann["dp_x"]) * ann["bbox"][2] / 255.0).astype(int)
    frac = np.mean(px >= half)
    d.iuv = iuv
    m = evaluate(gt, detections_to_records([d]), surface, coco_metrics=False)
    thresholds = np.linspace(0.5, 0.95, 10)
    assert _ap(m, "gps") == pytest.approx(np.mean(frac >= thresholds))


def test_npz_and_json_agree(surface, tmp_path):
    gt, dets = make_synthetic_set(surface, num_images=3, num_points=40, uv_noise=0.05, false_positives=1, seed=8)
    path = tmp_path / "res.npz"
    write_results_npz(path, [d.image_id for d in dets], [d.bbox for d in dets], [d.score for d in dets],
                      [d.iuv for d in dets])
    a = evaluate(gt, detections_to_records(dets), surface, coco_metrics=False)
    b = evaluate(gt, str(path), surface, coco_metrics=False)
    assert a["densepose"] == b["densepose"]
    assert isinstance(load_results(str(path)).packed, np.memmap)


def test_coco_box_ap(surface):
    gt, dets = make_synthetic_set(surface, num_images=2, num_points=20, seed=9)
    m = evaluate(gt, detections_to_records(dets), surface)
    assert m["coco"]["bbox"]["AP"] == pytest.approx(1.0)


def _check_official_records(path, count):
    with open(path) as f:
        records = json.load(f)
    dets = load_results(path)
    assert len(dets) == len(records) == count
    for k, rec in enumerate(records):
        iuv = dets.iuv(k)
        assert iuv.shape == tuple(rec["uv_shape"]) == (3, int(rec["bbox"][3]), int(rec["bbox"][2]))
        assert iuv.dtype == np.uint8 and iuv[0].max() <= 24
        assert (iuv == decode_uv_data(rec["uv_data"])).all()
    return dets


def test_official_example_subset_decodes():
    dets = _check_official_records(OFFICIAL_SUBSET, 3)
    assert [int(dets.iuv(k)[0].max()) for k in range(3)] == [0, 23, 24]
    assert len(np.unique(dets.iuv(2)[0])) == 16  # background and 15 parts


def test_official_example_decodes(shared_dir):
    _check_official_records(shared_dir / "data" / "official" / "example_results.json", 21)


def test_gt_mask_falls_back_to_segmentation(surface):
    gt, dets = _one_person(surface, seed=12)
    for a in gt["annotations"]:
        a.pop("dp_masks")  # the synthetic segmentation is the same mask, pasted in the image
    m = evaluate(gt, detections_to_records(dets), surface, coco_metrics=False)
    assert _ap(m, "iou") == pytest.approx(1.0)


@pytest.mark.parametrize("grown", [False, True])
def test_evaluate_model_runs_a_model_over_images(surface, tmp_path, grown):
    import torch
    from PIL import Image

    gt, _ = make_synthetic_set(surface, num_images=2, people_per_image=(1, 1), num_points=20,
                               with_detections=False, seed=13)
    for img in gt["images"]:
        Image.fromarray(np.zeros((img["height"], img["width"], 3), np.uint8)).save(tmp_path / img["file_name"])
    boxes = {a["image_id"]: a["bbox"] for a in gt["annotations"]}

    class BoxModel(torch.nn.Module):
        """Predicts each GT box, all foreground, chart 1, U = V = 0.5 (over the box grown to twice
        its width and height when ``grown``: a model whose DensePose head reads grown boxes)."""

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.calls = 0

        def forward(self, images):
            self.calls += 1
            assert not self.training
            x, y, w, h = boxes[self.calls]
            S = 112
            fine = torch.zeros(1, 25, S, S)
            fine[:, 1] = 1.0
            coarse = torch.zeros(1, 2, S, S)
            coarse[:, 1] = 1.0
            out = {"boxes": torch.tensor([[x, y, x + w, y + h]], dtype=torch.float32), "scores": torch.tensor([0.9]),
                   "coarse_segm": coarse, "fine_segm": fine, "u": torch.full((1, 25, S, S), 0.5),
                   "v": torch.full((1, 25, S, S), 0.5)}
            if grown:
                out["dp_boxes"] = torch.tensor([[x - w / 2, y - h / 2, x + 1.5 * w, y + 1.5 * h]], dtype=torch.float32)
            return [out]

    from densepose.evaluation import evaluate_model

    model = BoxModel().train()
    m = evaluate_model(model, tmp_path, gt, surface, progress=False)
    assert model.training and model.calls == 2
    assert m["counts"]["detections"] == 2
    # Full-box foreground against the elliptic GT mask: IoU about 0.58, above 0.5 only; over the
    # grown box (4x the area) it is below 0.5. Box AP reads the detection boxes either way.
    assert m["densepose"]["iou"]["AP50"] == pytest.approx(0.0 if grown else 1.0)
    assert m["coco"]["bbox"]["AP"] == pytest.approx(1.0)


def test_coco_mask_ap_when_results_carry_segmentation(surface):
    gt, dets = make_synthetic_set(surface, num_images=2, num_points=10, seed=14)
    seg = {a["id"]: a["segmentation"] for a in gt["annotations"]}
    records = detections_to_records(dets)
    for r, d in zip(records, dets):
        r["segmentation"] = seg[d.gt_id]
    m = evaluate(gt, records, surface)
    assert m["coco"]["segm"]["AP"] == pytest.approx(1.0)
    assert "keypoints" not in m["coco"]
