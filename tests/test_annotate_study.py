"""The annotator accuracy study with the simulated annotator, and the point sampler."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from densepose.annotate import db, importer
from densepose.annotate.sampling import sample_part_points
from densepose.annotate.simulate import simulate
from densepose.annotate.study import run_study
from densepose.data.coco import parse_coco
from densepose.annotate.export import export_project
from test_annotate_helpers import make_synthetic


def test_sampler_spreads_points_inside_parts():
    labels = np.zeros((256, 256), np.uint8)
    labels[20:220, 40:120] = 1  # big part: capped at 14
    labels[100:110, 200:212] = 2  # small part: one point
    # an L-shaped part: k-means centres of non-convex regions must still land inside
    labels[150:250, 130:140] = 3
    labels[240:250, 130:190] = 3
    xy, part = sample_part_points(labels)
    n = np.bincount(part, minlength=4)
    assert n[0] == 0 and n[1] == 14 and n[2] == 1 and 5 <= n[3] <= 9
    assert all(labels[int(y), int(x)] == k for (x, y), k in zip(xy, part))
    big = xy[part == 1]
    d = np.linalg.norm(big[:, None] - big[None], axis=-1) + np.eye(len(big)) * 1e9
    # roughly equidistant: nearest-neighbour distances within a factor ~2 of each other
    nn = d.min(1)
    assert nn.min() > 0.4 * nn.max()
    # deterministic
    assert np.array_equal(sample_part_points(labels)[0], xy)
    assert len(sample_part_points(np.zeros((256, 256), np.uint8))[0]) == 0


def _study_project(tmp_path, surface, n_images=2):
    synth = make_synthetic(tmp_path / "synth", surface, n_images=n_images)
    project = tmp_path / "proj"
    importer.import_coco(project, synth / "annotations.json", synth / "images", synth / "dense")
    db.add_user(project, "sim")
    return project


def test_simulated_annotator_and_study(tmp_path, sphere_surface):
    project = _study_project(tmp_path, sphere_surface)
    res = simulate(project, "sim", sphere_surface, sigma=0.03, confusion=0.0, seed=0, progress=False)
    assert res["persons"] == 2 and res["clicks"] > 10
    out = tmp_path / "study"
    report = run_study(project, sphere_surface, out)
    # a 3 cm isotropic 3D offset projected onto the surface: mean distance about sqrt(pi/2)*3 cm ~ 3.8 cm
    assert 2.0 < report["mean_cm"] < 6.0, report
    assert report["clicks"] == res["clicks"]
    assert set(report["per_part"]) <= {"torso", "right hand", "upper arm right", "head"}
    assert sum(p["clicks"] for p in report["per_part"].values()) == report["clicks"]
    assert json.loads((out / "study.json").read_text())["mean_cm"] == report["mean_cm"]
    assert set(report["per_annotator"]) == {"sim"} and report["per_annotator"]["sim"]["clicks"] == report["clicks"]
    assert report["heat_scale_cm"] == [0.0, 10.0]
    w = report["within"]  # Fig. 5's curve at a few thresholds: non-decreasing, a 3 cm noise mostly within 10 cm
    assert 0 <= w["2cm"] <= w["5cm"] <= w["10cm"] <= w["20cm"] <= 1 and w["10cm"] > 0.8
    for name in ("heatmap_front.png", "heatmap_back.png", "heatmap.png", "study.png"):
        img = np.asarray(Image.open(out / name).convert("RGB"))
        assert img.shape[0] > 100 and img.std() > 10  # a picture, not a blank
    # the simulated work exports as a valid DensePose-COCO file
    counts = export_project(project, tmp_path / "export.json")
    assert counts["annotated"] == 2 and counts["points"] == res["clicks"]
    parse_coco(json.loads((tmp_path / "export.json").read_text()))


def test_within_curve_and_fixed_heat_scale(tmp_path, sphere_surface):
    from densepose.annotate.study import within_curve

    assert within_curve(np.array([1.0, 2.0, 3.0, 10.0]), np.array([0.5, 2.0, 5.0, 10.0])).tolist() == [0, 0.5, 0.75, 1]
    # two annotators: one per curve, plus the pooled one; the heat map's colours do not depend on the data's range
    project = _study_project(tmp_path, sphere_surface, n_images=2)
    db.add_user(project, "sim2")
    simulate(project, "sim", sphere_surface, sigma=0.0, confusion=0.0, max_persons=1, progress=False)
    simulate(project, "sim2", sphere_surface, sigma=0.05, confusion=0.0, seed=1, progress=False)
    report = run_study(project, sphere_surface, tmp_path / "study")
    a, b = report["per_annotator"]["sim"], report["per_annotator"]["sim2"]
    assert a["clicks"] + b["clicks"] == report["clicks"] and a["mean_cm"] < b["mean_cm"]
    from densepose.annotate.study import render_heat

    v = np.full(len(np.asarray(sphere_surface.vertices)), 0.05)  # 5 cm everywhere: the middle of the 0-10 cm scale
    img = render_heat(sphere_surface, v, 0.10, size=64)["front"]
    img2 = render_heat(sphere_surface, v * 2, 0.10, size=64)["front"]
    assert not np.array_equal(img, img2)


def test_noise_free_annotator_is_accurate(tmp_path, sphere_surface):
    """With no noise the only error is the view's pixel size: well under a centimetre on this sphere."""
    project = _study_project(tmp_path, sphere_surface, n_images=1)
    simulate(project, "sim", sphere_surface, sigma=0.0, confusion=0.0, progress=False)
    report = run_study(project, sphere_surface, tmp_path / "study")
    assert report["mean_cm"] < 1.0, report


def test_part_confusion_raises_error(tmp_path, sphere_surface):
    project = _study_project(tmp_path, sphere_surface, n_images=1)
    simulate(project, "sim", sphere_surface, sigma=0.0, confusion=1.0, progress=False)
    report = run_study(project, sphere_surface, tmp_path / "study")
    assert report["mean_cm"] > 5.0, report  # mirrored points are far from the truth


def test_study_needs_truth(tmp_path, sphere_surface):
    from densepose.errors import UserError

    project = _study_project(tmp_path, sphere_surface, n_images=1)
    with pytest.raises(UserError, match="no clicks"):
        run_study(project, sphere_surface, tmp_path / "study")


@pytest.mark.slow
def test_study_on_anny(tmp_path, anny_surface):
    """The real surface: part views, mirror confusion, geodesics and the heat map on Anny."""
    project = _study_project(tmp_path, anny_surface, n_images=1)
    res = simulate(project, "sim", anny_surface, sigma=0.01, confusion=0.0, progress=False)
    report = run_study(project, anny_surface, tmp_path / "study")
    assert report["clicks"] == res["clicks"] > 10
    # a 1 cm 3D offset plus the views' pixel size: around a centimetre or two on the body
    assert 0.3 < report["median_cm"] < 3.0, report
    assert (tmp_path / "study" / "heatmap.png").is_file()
