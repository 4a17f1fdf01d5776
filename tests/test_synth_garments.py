"""Garments follow pose and shape, the ground truth under clothes obeys its rule, MakeHuman assets bind."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from densepose.errors import UserError
from densepose.synth import garments_shells as shells
from densepose.synth import garments_wraps as wraps
from densepose.synth.garments import GarmentLibrary, Outfit, dress, sample_outfit
from densepose.synth.garments_bind import height_over_surface
from densepose.synth.layers import MAX_GAP, compose_layers, ray_lengths
from densepose.synth.raster import fragments_multi


@pytest.fixture(scope="module")
def lib():
    return GarmentLibrary.load(None)


@pytest.fixture(scope="module")
def bodies():
    """Four posed bodies (families x random shapes), (4, V, 3)."""
    from densepose.surface.anny import body_vertex_ids, load_anny_model
    from densepose.synth.poses import pose_tensor, sample_pose
    from densepose.synth.scene import PHENOTYPES, sample_phenotype

    model = load_anny_model()
    rng = np.random.default_rng(7)
    phen = [sample_phenotype(rng) for _ in range(4)]
    rots = [sample_pose(model, rng, fam)[1] for fam in ("standing", "walking", "sitting", "arms_raised")]
    kwargs = {k: torch.tensor([p[k] for p in phen], dtype=torch.float32) for k in PHENOTYPES}
    with torch.no_grad():
        out = model(pose_parameters=pose_tensor(model, rots), phenotype_kwargs=kwargs)
    return out["vertices"].double().numpy()[:, body_vertex_ids()]


def _height_over_body(points, body, faces):
    """Distance to the body surface and signed height along the nearest face's outward normal."""
    _, _, foot, _, height = height_over_surface(points, body, faces)
    return np.linalg.norm(points - foot, axis=1), height


def test_tight_garments_stay_on_the_body_over_poses_and_shapes(lib, bodies):
    t = lib.template
    tight = [shells.top(t, 1.0, -0.08, 0.06, False, 0.006, 0.0), shells.bottom(t, 1.0, 0.08, 0.005, 0.0),
             shells.top(t, 0.3, 0.0, 0.02, True, 0.004, 0.0), shells.bottom(t, 0.4, 0.05, 0.008, 0.0)]
    assert all(g.tight for g in tight)
    for body, fold_share in zip(bodies, (0.03, 0.03, 0.06, 0.06)):
        normals = t.posed_normals(body)
        for g in tight:
            dist, height = _height_over_body(g.vertices(body, normals)[::2], body, t.faces)
            assert dist.max() < 0.02  # within a few cm of the skin everywhere
            # Cloth dips under the skin only where a bent joint folds the body onto itself
            # (groin when sitting, armpits with raised arms): at most a few percent of its vertices.
            assert (height < -0.002).mean() < fold_share


def test_garments_move_with_the_body(lib, bodies):
    """A wrap (skirt) and a shell keep their binding: moving the body rigidly moves them the same way."""
    t = lib.template
    skirt = wraps.skirt(t, "bottom", 0.05, 0.6, 0.01, 0.06)
    top = shells.top(t, 0.5, -0.05, 0.03, False, 0.015, 0.01)
    c, s = np.cos(0.7), np.sin(0.7)
    R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    body = bodies[1]
    moved = body @ R.T + np.array([1.0, 2.0, 0.3])
    for g in (skirt, top):
        a = g.vertices(body, t.posed_normals(body))
        b = g.vertices(moved, t.posed_normals(moved))
        assert np.allclose(a @ R.T + np.array([1.0, 2.0, 0.3]), b, atol=1e-9)
    # On the rest body the skirt hangs outside the hips and legs, within its ease + flare.
    dist, height = _height_over_body(skirt.vertices(t.vertices, t.normals), t.vertices, t.faces)
    assert (height > 0).mean() > 0.97 and dist.max() < 0.25


def test_outfits_are_deterministic_by_seed(lib, bodies):
    def run(seed):
        rng = np.random.default_rng(seed)
        return [dress(lib, sample_outfit(rng, lib, {"gender": 0.2}), b) for b in bodies[:2]]

    a, b = run(3), run(3)
    assert [m.kind for ms in a for m in ms] == [m.kind for ms in b for m in ms]
    for ma, mb in zip([m for ms in a for m in ms], [m for ms in b for m in ms]):
        assert np.array_equal(ma.vertices, mb.vertices) and np.array_equal(ma.faces, mb.faces)
    kinds = {m.kind for seed in range(12) for m in dress(lib, sample_outfit(np.random.default_rng(seed), lib, {}),
                                                           bodies[0])}
    assert {"top", "shoes", "hair"} <= kinds


def _scene(body, meshes, size=160):
    """Camera 2.6 m in front of the body (which faces -Y); body and cover fragments."""
    def cam(v):
        return np.stack([v[:, 0], -v[:, 2], v[:, 1] + 2.6], axis=1)

    K = np.array([[150.0, 0, size / 2], [0, 150.0, size / 2], [0, 0, 1]])
    from densepose.surface.anny import body_faces

    faces = body_faces()
    body_frag = fragments_multi([cam(body)], faces, K, size, size)
    cover_frag = fragments_multi([cam(m.vertices) for m in meshes], [m.faces for m in meshes], K, size, size,
                                 cull_backfaces=False)
    return K, cam(body), faces, body_frag, cover_frag


def _long_outfit(lib):
    t = lib.template
    garments = [shells.top(t, 0.5, -0.05, 0.05, False, 0.02, 0.02), wraps.skirt(t, "bottom", 0.05, 0.8, 0.012, 0.1),
                shells.hair_cap(t, 0.08, 0.04, -0.04, 0.015), wraps.long_hair(t, 0.2, 0.02, 1.4)]
    return Outfit(garments, [g.vertices(t.vertices, t.normals) for g in garments])


def _layers(meshes, body_frag, cover_frag, K, size, surface):
    owner = np.zeros(len(meshes), dtype=np.int64)
    return compose_layers(body_frag, cover_frag, owner, K, size, size, garments=meshes,
                          body_face_part=np.asarray(surface.face_part))


def test_ground_truth_rule_under_clothes(lib, bodies, anny_surface):
    body = bodies[1]
    meshes = dress(lib, _long_outfit(lib), body)
    size = 160
    K, body_cam, faces, body_frag, cover_frag = _scene(body, meshes, size)
    L = _layers(meshes, body_frag, cover_frag, K, size, anny_surface)
    cloth = L.on_cover & (L.person == 0)
    assert cloth.sum() > 500 and (cloth & ~L.labelled).sum() > 20  # the skirt hem is far from the legs
    assert (cloth & L.bound).sum() > 20 and (cloth & L.labelled & ~L.bound).sum() > 200
    # A ray point lies on the pixel's ray, behind the cloth, within MAX_GAP.
    ray = np.flatnonzero(cloth & L.labelled & ~L.bound)
    point = (L.body_bary[ray, :, None] * body_cam[faces[L.body_face[ray]]]).sum(axis=1)
    xy = point[:, :2] / point[:, 2:] * K[0, 0] + K[0, 2]
    row, col = np.divmod(L.pix[ray], size)
    assert np.abs(xy[:, 0] - (col + 0.5)).max() < 1e-6 and np.abs(xy[:, 1] - (row + 0.5)).max() < 1e-6
    gap = (point[:, 2] - L.depth[ray]) * ray_lengths(K, L.pix[ray], size)
    assert gap.min() >= 0 and gap.max() <= MAX_GAP
    # A bound point is what the nearest garment vertex hangs on, bound within MAX_GAP.
    bound = np.flatnonzero(cloth & L.bound)
    for k, m in enumerate(meshes):
        sel = bound[L.cover_mesh[bound] == k]
        vertex = m.faces[L.cover_face[sel], L.cover_bary[sel].argmax(axis=1)]
        assert np.array_equal(L.body_face[sel], m.anchor_face[vertex]) and np.all(m.anchor_dist[vertex] <= MAX_GAP)
        # ... so the labelled body point lies near the cloth seen at the pixel (one cloth triangle away at most).
        cloth_cam = np.stack([m.vertices[:, 0], -m.vertices[:, 2], m.vertices[:, 1] + 2.6], axis=1)
        seen = (L.cover_bary[sel, :, None] * cloth_cam[m.faces[L.cover_face[sel]]]).sum(axis=1)
        labelled = (L.body_bary[sel, :, None] * body_cam[faces[L.body_face[sel]]]).sum(axis=1)
        assert np.all(np.linalg.norm(seen - labelled, axis=1) <= MAX_GAP + 0.05)
    # Unlabelled cloth has neither point; instance mask = body and clothes.
    assert np.all(L.gap[cloth & ~L.labelled] > MAX_GAP)
    assert np.all(L.person[L.on_cover] == 0)


def test_clothes_keep_the_visible_body_iuv(lib, bodies, anny_surface):
    body = bodies[2]
    meshes = dress(lib, _long_outfit(lib), body)
    size = 160
    K, _, _, body_frag, cover_frag = _scene(body, meshes, size)
    naked = np.zeros((size * size, 3))
    I0, uv0 = anny_surface.iuv_from_points(body_frag[2], body_frag[3])
    naked[body_frag[0]] = np.column_stack([I0, uv0])
    L = _layers(meshes, body_frag, cover_frag, K, size, anny_surface)
    I1, uv1 = anny_surface.iuv_from_points(L.body_face[L.labelled], L.body_bary[L.labelled])
    dressed = np.zeros((size * size, 3))
    dressed[L.pix[L.labelled]] = np.column_stack([I1, uv1])
    visible = L.pix[~L.on_cover & (L.person == 0)]
    assert len(visible) > 300
    assert np.array_equal(dressed[visible], naked[visible])
    # Cloth labelled by its ray point carries exactly the naked render's I, U, V there as well.
    ray = L.pix[L.labelled & ~L.bound]
    assert np.array_equal(dressed[ray], naked[ray])


def test_makehuman_reader_binds_every_asset(shared_dir, lib):
    from densepose.synth.makehuman import load_assets, parse_obj

    folder = shared_dir / "data" / "makehuman"
    if not folder.is_dir():
        pytest.skip(f"no MakeHuman assets at {folder}")
    assets = load_assets(folder)
    files = sorted(folder.rglob("*.mhclo"))
    assert sum(len(v) for v in assets.values()) == len(files)
    assert {"suit", "shoes", "hair", "hat"} <= set(assets)
    t = lib.template
    for kind, items in assets.items():
        for name, pieces in items:
            obj = next(f for f in files if f.stem == name)
            n_obj = len(parse_obj(obj.with_suffix(".obj"))[0]) if obj.with_suffix(".obj").exists() else None
            n_vert = sum(len(g.binding.tri) for g in pieces)
            assert n_obj is None or n_vert >= n_obj * 0.99 or kind == "suit"
            for g in pieces:
                p = g.vertices(t.vertices, t.normals)
                assert np.isfinite(p).all() and g.faces.max() < len(p)
                dist, _ = _height_over_body(p[::10], t.vertices, t.faces)
                limit = 0.45 if kind == "hair" else 0.12
                assert np.percentile(dist, 95) < limit, (name, kind)


def test_makehuman_reader_reports_bad_files(tmp_path):
    from densepose.synth.makehuman import load_assets

    with pytest.raises(UserError, match="not found"):
        load_assets(tmp_path / "missing")
    with pytest.raises(UserError, match="no MakeHuman"):
        load_assets(tmp_path)
    (tmp_path / "x.mhclo").write_text("name x\nobj_file x.obj\nweights a\n3 0.5\nverts 0\n1 2 3 0.5 0.5\n")
    with pytest.raises(UserError, match="x.mhclo:6"):
        load_assets(tmp_path)


def test_per_mesh_back_face_culling_matches_explicit_two_sided_meshes():
    """Culling flags per mesh (shells culled, open cloth two-sided) = culling all with both windings."""
    rng = np.random.default_rng(0)
    verts = [rng.uniform(-1, 1, (30, 3)) + [0, 0, 4] for _ in range(3)]
    faces = [rng.integers(0, 30, (40, 3)) for _ in range(3)]
    K = np.array([[100.0, 0, 50], [0, 100, 50], [0, 0, 1]])
    mixed = fragments_multi(verts, faces, K, 100, 100, cull_backfaces=[True, False, True])
    doubled = [faces[0], np.concatenate([faces[1], faces[1][:, ::-1]]), faces[2]]
    ref = fragments_multi(verts, doubled, K, 100, 100, cull_backfaces=True)
    assert np.array_equal(mixed[0], ref[0]) and np.array_equal(mixed[1], ref[1])
    assert np.array_equal(mixed[2], ref[2] % 40) and np.allclose(mixed[4], ref[4])
    assert len(mixed[0]) > len(fragments_multi(verts, faces, K, 100, 100)[0])


def test_hems_are_cut_exactly_along_the_hem_line():
    """clip_faces keeps the region where the level is >= 0 and puts the new edge exactly on level 0."""
    from densepose.synth.garments_bind import clip_faces

    n = 9
    x, y = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    verts = np.column_stack([x.ravel(), y.ravel(), np.zeros(n * n)])
    i = np.arange(n - 1)
    a = (i[:, None] * n + i[None, :]).ravel()
    faces = np.concatenate([np.stack([a, a + 1, a + n + 1], 1), np.stack([a, a + n + 1, a + n], 1)])
    level = 0.37 + 0.2 * verts[:, 1] - verts[:, 0]  # keep x <= 0.37 + 0.2 y (a slanted hem)
    ends, t, tris = clip_faces(faces, level)
    p = (1 - t)[:, None] * verts[ends[:, 0]] + t[:, None] * verts[ends[:, 1]]
    crossing = t > 0
    assert np.allclose(p[crossing, 0], 0.37 + 0.2 * p[crossing, 1])  # new vertices on the hem line
    e1, e2 = p[tris[:, 1]] - p[tris[:, 0]], p[tris[:, 2]] - p[tris[:, 0]]
    area = 0.5 * (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    assert np.all(area > -1e-12)  # same (counter-clockwise) winding as the input
    assert np.isclose(area.sum(), 0.37 + 0.1)  # exactly the region's area


def test_mhclo_binding_follows_makehuman_formula(tmp_path, lib):
    """p = sum w_k base[i_k] + scale * offset, MakeHuman units (dm, Y up) turned into Anny's (m, Z up)."""
    from densepose.synth.makehuman import MH_TO_ANNY, hm08_rest, load_assets

    base, to_body = hm08_rest()
    t = lib.template
    hm08_of_body = np.flatnonzero(to_body >= 0)
    chest = np.argsort(np.where(t.chart == 2, t.vertices[:, 1], np.inf))[:40:10]  # front of the torso
    refs = hm08_of_body[chest]
    rows = [(refs[0], refs[1], refs[2], 0.2, 0.3, 0.5, 0.1, 0.2, 0.6),
            (refs[1], refs[2], refs[3], 0.6, 0.2, 0.2, -0.1, 0.3, 0.5),
            (refs[2], refs[3], refs[0], 0.1, 0.1, 0.8, 0.0, -0.2, 0.7)]
    x_pair = (hm08_of_body[0], hm08_of_body[500])
    mh = base @ np.linalg.inv(MH_TO_ANNY).T
    ref_dist = abs(mh[x_pair[0], 0] - mh[x_pair[1], 0]) / 1.25  # so that the x scale is 1.25
    lines = ["name probe", "obj_file probe.obj", f"x_scale {x_pair[0]} {x_pair[1]} {ref_dist:.8f}", "verts 0"]
    lines += [" ".join(str(v) for v in r) for r in rows]
    (tmp_path / "probe.mhclo").write_text("\n".join(lines) + "\n")
    (tmp_path / "probe.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    garment = load_assets(tmp_path)["suit"][0][1][0]
    body_rest = base[hm08_of_body]
    got = garment.vertices(body_rest, t.normals)
    r = np.array(rows, dtype=np.float64)
    idx, w, off = r[:, :3].astype(np.int64), r[:, 3:6], r[:, 6:9]
    expected = (w[..., None] * base[idx]).sum(axis=1) + (off * [1.25, 1.0, 1.0]) @ MH_TO_ANNY.T
    assert np.allclose(got, expected, atol=1e-9)
    # On a body 1.2 times larger the offsets grow with it (MakeHuman's scale references): all scales.
    assert np.allclose(garment.vertices(1.2 * body_rest, t.normals), 1.2 * expected, atol=1e-9)


def test_compose_layers_with_nothing_in_view():
    """An image without people or props (a hard negative) composes to no pixel at all."""
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros(0))
    K = np.array([[50.0, 0, 32], [0, 50.0, 32], [0, 0, 1]])
    L = compose_layers(empty, empty, np.zeros(0, dtype=np.int64), K, 64, 64, garments=[],
                       body_face_part=np.ones(10, dtype=np.int64))
    assert len(L.pix) == 0 and L.body_bary.shape == (0, 3) and not L.labelled.any()
