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
    rows = con.execute("SELECT p.*, s.image_id, s.x AS bx, s.y AS by, s.w AS bw, s.h AS bh, s.truth_instance, "
                       "u.name AS annotator FROM points p JOIN persons s ON s.id=p.person_id "
                       "LEFT JOIN users u ON u.id=p.user_id "
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

    from densepose.annotate.study_figure import HEAT_CMAP

    cmap = matplotlib.colormaps[HEAT_CMAP]
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


#: the heat map's colour scale, fixed so that maps of different studies compare: 0 .. 10 cm
HEAT_MAX_CM = 10.0
#: thresholds (cm) at which the fraction of points within is reported (the curves use 0..CURVE_MAX_CM)
WITHIN_CM = (2.0, 5.0, 10.0, 20.0)
CURVE_MAX_CM = 30.0


def within_curve(errors_cm: np.ndarray, thresholds_cm: np.ndarray) -> np.ndarray:
    """Fraction of points whose error is at most each threshold (Fig. 5's curves)."""
    e = np.sort(np.asarray(errors_cm, dtype=np.float64))
    return np.searchsorted(e, thresholds_cm, side="right") / max(len(e), 1)


def summary(errors_cm: np.ndarray) -> dict:
    return {"clicks": int(len(errors_cm)), "mean_cm": float(errors_cm.mean()), "median_cm": float(np.median(errors_cm)),
            "within": {f"{t:g}cm": float(f) for t, f in zip(WITHIN_CM, within_curve(errors_cm, np.array(WITHIN_CM)))}}


def run_study(project: str | os.PathLike, surface, out: str | os.PathLike) -> dict:
    """The annotator accuracy study of the project's clicks, as in the paper's Fig. 5.

    Writes under ``out``: ``study.json`` (pooled, per annotator and per part: mean, median and the
    fraction of points within ``WITHIN_CM``), ``study.png`` (the curves per annotator and pooled,
    the per-part error, the heat map), ``heatmap.png`` and ``heatmap_{front,back}.png`` (the error
    on the body, colour scale fixed at 0..``HEAT_MAX_CM`` cm). Returns the report dict.
    """
    from densepose.annotate.study_figure import save_heat_figure, save_study_figure

    project, out = Path(project), Path(out)
    con = db.connect(project)
    try:
        rows = collect_errors(con)
        n_points = con.execute("SELECT COUNT(*) FROM points WHERE status!='todo'").fetchone()[0]
        if not rows:
            raise UserError(f"{project}: no clicks with a known error; import synthetic data with --truth and annotate "
                            "(or `densepose annotate simulate`) first")
        errors = np.array([r["error"] for r in rows])
        who = np.array([r["annotator"] or "?" for r in rows])
        truth_part = np.zeros(len(rows), dtype=np.int64)
        truth_xyz = np.zeros((len(rows), 3))
        for k, r in enumerate(rows):
            tp = true_point(surface, project, dict(r) | {"x": r["bx"], "y": r["by"], "w": r["bw"], "h": r["bh"]},
                            r["x"], r["y"])
            truth_part[k] = CHART_TO_MASK_PART[surface.face_part[tp[0]]]
            truth_xyz[k] = surface.xyz_from_points(np.array([tp[0]]), tp[1][None])[0]
    finally:
        con.close()
    cm = errors * 100
    per_part = {name: summary(cm[truth_part == k]) for k, name in enumerate(MASK_PART_NAMES, start=1)
                if (truth_part == k).any()}
    per_annotator = {name: summary(cm[who == name]) for name in sorted(set(who))}
    report = {**summary(cm), "answered_points": int(n_points), "heat_scale_cm": [0.0, HEAT_MAX_CM],
              "per_annotator": per_annotator, "per_part": per_part}
    vertex_err = heat_vertices(surface, truth_xyz, errors, truth_part)
    pics = render_heat(surface, vertex_err, HEAT_MAX_CM / 100)
    _save_png(out / "heatmap_front.png", pics["front"])
    _save_png(out / "heatmap_back.png", pics["back"])
    thresholds = np.linspace(0, CURVE_MAX_CM, 121)
    curves = {name: within_curve(cm[who == name], thresholds) for name in per_annotator}
    curves["pooled"] = within_curve(cm, thresholds)
    save_heat_figure(out / "heatmap.png", pics, HEAT_MAX_CM)
    save_study_figure(out / "study.png", thresholds, curves, per_part, pics, HEAT_MAX_CM)
    atomic_write_bytes(out / "study.json", json.dumps(report, indent=2).encode())
    return report


def _save_png(path: Path, img: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
