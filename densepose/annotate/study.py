"""The annotator accuracy study (paper §2.2, Fig. 5).

For synthetic images the exact surface point under every pixel is known (``truth``). Each click's
geodesic distance to it is stored with the click; ``run_study`` reports, per annotator and pooled,
the fraction of points within x cm (Fig. 5's curves), the mean and median per part, and paints the
error over the body (Nadaraya-Watson interpolation from the sampled true points to every vertex),
front and back, on a fixed colour scale.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.spatial import cKDTree

from densepose.annotate import db
from densepose.annotate.truth import true_point
from densepose.annotate.views import CAMERA_DISTANCE, look_at, render_view
from densepose.cache import atomic_write_bytes
from densepose.errors import UserError
from densepose.surface.parts import CHART_TO_MASK_PART, MASK_PART_NAMES


def collect_errors(con) -> list:
    """Every answered point with a known error, joined with its person's box and truth instance."""
    rows = con.execute("SELECT p.*, s.image_id, s.x AS bx, s.y AS by, s.w AS bw, s.h AS bh, s.truth_instance "
                       "FROM points p JOIN persons s ON s.id=p.person_id "
                       "WHERE p.status='done' AND p.error IS NOT NULL ORDER BY p.id").fetchall()
    return rows


def heat_vertices(surface, xyz: np.ndarray, err: np.ndarray, part: np.ndarray, bandwidth: float = 0.05) -> np.ndarray:
    """Interpolate point errors (N,) at rest-pose positions xyz (N, 3) of coarse parts ``part``
    (N,) to every mesh vertex -> (V,).

    Gaussian-kernel (Nadaraya-Watson) average, in the rest pose's 3D space, over the samples of the
    vertex's own coarse part within 3 bandwidths (so the torso does not bleed into the arm beside
    it); a vertex with none takes its part's nearest sample, or the nearest sample at all.
    """
    verts = np.asarray(surface.vertices)
    faces = np.asarray(surface.faces)
    vpart = np.zeros(len(verts), dtype=np.int64)
    vpart[faces.ravel()] = np.repeat(CHART_TO_MASK_PART[np.asarray(surface.face_part)], 3)
    out = err[cKDTree(xyz).query(verts)[1]]
    for k in np.unique(part):
        vids = np.flatnonzero(vpart == k)
        sel = np.flatnonzero(part == k)
        tree = cKDTree(xyz[sel])
        out[vids] = err[sel[tree.query(verts[vids])[1]]]
        for v, idx in zip(vids, tree.query_ball_point(verts[vids], 3 * bandwidth)):
            if idx:
                d2 = ((xyz[sel[idx]] - verts[v]) ** 2).sum(1)
                w = np.exp(-0.5 * d2 / bandwidth**2)
                out[v] = (w * err[sel[idx]]).sum() / w.sum()
    return out


def render_heat(surface, vertex_value: np.ndarray, vmax: float, size: int = 512) -> dict[str, np.ndarray]:
    """Front and back pictures (size, size, 3) of the rest-pose body coloured by per-vertex values."""
    import matplotlib

    cmap = matplotlib.colormaps["jet"]
    verts = np.asarray(surface.vertices, dtype=np.float64)
    faces = np.asarray(surface.faces, dtype=np.int64)
    lo, hi = verts.min(0), verts.max(0)
    centre = (lo + hi) / 2
    radius = float(np.linalg.norm(verts - centre, axis=1).max())
    focal = 0.47 * size * CAMERA_DISTANCE / radius
    out = {}
    for name in ("front", "back"):
        R, t = look_at(centre, name, CAMERA_DISTANCE)
        shade_rgb, face_id, bary = render_view(verts, faces, np.full((len(faces), 3), 255.0), R, t, focal, size)
        fg = face_id >= 0
        value = (bary[fg] * vertex_value[faces[face_id[fg]]]).sum(1)
        colour = cmap(np.clip(value / vmax, 0, 1))[:, :3] * 255
        img = np.full((size, size, 3), 255, dtype=np.uint8)
        img[fg] = (colour * (shade_rgb[fg] / 255.0)).astype(np.uint8)
        out[name] = img
    return out


def run_study(project: str | os.PathLike, surface, out: str | os.PathLike) -> dict:
    """Per-part and overall mean geodesic error of the project's clicks; heat maps as PNG.

    Writes ``study.json``, ``heatmap_front.png``, ``heatmap_back.png`` and ``heatmap.png`` (both
    views with a colour bar) under ``out``; returns the report dict.
    """
    project, out = Path(project), Path(out)
    con = db.connect(project)
    try:
        rows = collect_errors(con)
        n_points = con.execute("SELECT COUNT(*) FROM points WHERE status!='todo'").fetchone()[0]
        if not rows:
            raise UserError(f"{project}: no clicks with a known error; import synthetic data with --truth and annotate "
                            "(or `densepose annotate simulate`) first")
        errors = np.array([r["error"] for r in rows])
        truth_part = np.zeros(len(rows), dtype=np.int64)
        truth_xyz = np.zeros((len(rows), 3))
        for k, r in enumerate(rows):
            tp = true_point(surface, project, dict(r) | {"x": r["bx"], "y": r["by"], "w": r["bw"], "h": r["bh"]},
                            r["x"], r["y"])
            truth_part[k] = CHART_TO_MASK_PART[surface.face_part[tp[0]]]
            truth_xyz[k] = surface.xyz_from_points(np.array([tp[0]]), tp[1][None])[0]
    finally:
        con.close()
    per_part = {}
    for k, name in enumerate(MASK_PART_NAMES, start=1):
        sel = truth_part == k
        if sel.any():
            per_part[name] = {"mean_cm": float(errors[sel].mean() * 100), "median_cm": float(np.median(errors[sel]) * 100),
                              "clicks": int(sel.sum())}
    report = {"clicks": int(len(errors)), "answered_points": int(n_points),
              "mean_cm": float(errors.mean() * 100), "median_cm": float(np.median(errors) * 100),
              "per_part": per_part}
    vertex_err = heat_vertices(surface, truth_xyz, errors, truth_part)
    vmax = float(np.percentile(vertex_err, 98)) or 1e-3
    pics = render_heat(surface, vertex_err, vmax)
    _save_png(out / "heatmap_front.png", pics["front"])
    _save_png(out / "heatmap_back.png", pics["back"])
    _save_figure(out / "heatmap.png", pics, vmax)
    atomic_write_bytes(out / "study.json", json.dumps(report, indent=2).encode())
    return report


def _save_png(path: Path, img: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def _save_figure(path: Path, pics: dict[str, np.ndarray], vmax: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 4.6))
    for ax, name in zip(axes, ("front", "back")):
        img = pics[name]
        ys, xs = np.nonzero((img < 250).any(-1))  # crop to the body, a few pixels around it
        if len(ys):
            img = img[max(ys.min() - 8, 0):ys.max() + 9, max(xs.min() - 8, 0):xs.max() + 9]
        ax.imshow(img)
        ax.set_title(name)
        ax.axis("off")
    sm = plt.cm.ScalarMappable(cmap="jet", norm=plt.Normalize(0, vmax * 100))
    fig.colorbar(sm, ax=axes, fraction=0.04, label="annotator geodesic error (cm)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())

