"""The annotator accuracy study (paper §2.2, Fig. 5) and the simulated annotator.

For synthetic images the exact surface point under every pixel is known (``dense/*.npz``). Each
click's geodesic distance to it is stored with the click; ``study`` averages them per part and
overall and paints the error over the body (Nadaraya-Watson interpolation from the sampled true
points to every vertex), front and back.
"""
from __future__ import annotations

import functools
import io
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.spatial import cKDTree

from densepose.annotate import db, tasks
from densepose.annotate.importer import load_truth
from densepose.annotate.views import CAMERA_DISTANCE, ViewStore, look_at, render_view, views_dir
from densepose.cache import atomic_write_bytes
from densepose.errors import UserError
from densepose.surface.parts import CHART_TO_MASK_PART, MASK_PART_NAMES


# ---------------------------------------------------------------------------------------------- truth
@functools.lru_cache(maxsize=16)
def _truth(project: str, image_id: int, mtime: float) -> dict[str, np.ndarray]:
    return load_truth(Path(project), image_id)


def true_iuv(project: Path, person: dict, x: float, y: float) -> tuple[int, float, float] | None:
    """The dense truth (I, U, V) under box point (x, y) of ``person`` (a persons row), or None
    when the image has no truth or the pixel is not on that person."""
    if person["truth_instance"] is None:
        return None
    path = Path(project) / "truth" / f"{person['image_id']}.npz"
    if not path.is_file():
        return None
    t = _truth(str(project), int(person["image_id"]), path.stat().st_mtime)
    h, w = t["I"].shape
    col = int(np.clip(np.floor(person["x"] + x * person["w"] / 256.0), 0, w - 1))
    row = int(np.clip(np.floor(person["y"] + y * person["h"] / 256.0), 0, h - 1))
    if t["instance"][row, col] != person["truth_instance"] or t["I"][row, col] == 0:
        return None
    return int(t["I"][row, col]), float(t["U"][row, col]), float(t["V"][row, col])


def true_point(surface, project: Path, person: dict, x: float, y: float) -> tuple[int, np.ndarray] | None:
    """The true surface point (face, bary (3,)) under box point (x, y), or None."""
    iuv = true_iuv(project, person, x, y)
    if iuv is None:
        return None
    face, bary = surface.points_from_iuv(np.array([iuv[0]]), np.array([[iuv[1], iuv[2]]]))
    return int(face[0]), bary[0]


def click_error(surface, project: Path, person: dict, x: float, y: float, face: int, bary) -> float | None:
    """Geodesic distance (metres) from a clicked surface point to the truth at (x, y), or None."""
    truth = true_point(surface, project, person, x, y)
    if truth is None:
        return None
    g = surface.geodesics.between_points(np.array([face]), np.asarray(bary, dtype=np.float64)[None],
                                         np.array([truth[0]]), truth[1][None])
    return float(np.asarray(g)[0])


# ---------------------------------------------------------------------------------------------- simulation
def truth_labels(project: Path, person: dict) -> np.ndarray:
    """The person's true (256, 256) coarse part labels, resampled from the dense truth into the box."""
    t = _truth(str(project), int(person["image_id"]), (Path(project) / "truth" / f"{person['image_id']}.npz").stat().st_mtime)
    h, w = t["I"].shape
    grid = (np.arange(256) + 0.5) / 256.0
    cols = np.clip(np.floor(person["x"] + grid * person["w"]).astype(np.int64), 0, w - 1)
    rows = np.clip(np.floor(person["y"] + grid * person["h"]).astype(np.int64), 0, h - 1)
    charts = t["I"][rows[:, None], cols[None, :]].astype(np.int64)
    mine = t["instance"][rows[:, None], cols[None, :]] == person["truth_instance"]
    return np.where(mine, CHART_TO_MASK_PART[charts], 0).astype(np.uint8)


class SimulatedAnnotator:
    """A noise model of a human annotator, used to run the study without people.

    Step 1: paints the true part labels. Step 2: takes the true surface point, with probability
    ``confusion`` swaps it for its left/right mirror point (the commonest part confusion), moves it
    by a Gaussian offset of ``sigma`` metres in 3D and clicks the rendered pixel whose surface point
    lies nearest to the result (so the click goes through the same views and pixel lookup as a
    person's). Points not on the person in the truth are skipped ("not visible").
    """

    def __init__(self, surface, views: ViewStore, sigma: float = 0.02, confusion: float = 0.03, seed: int = 0):
        self.surface, self.views = surface, views
        self.sigma, self.confusion = sigma, confusion
        self.rng = np.random.default_rng(seed)
        self._trees: dict[tuple[int, str], tuple[cKDTree, np.ndarray]] = {}

    def _pixels(self, part: int, name: str) -> tuple[cKDTree, np.ndarray]:
        key = (part, name)
        if key not in self._trees:
            v = self.views.view(part, name)
            ys, xs = np.nonzero(v.face >= 0)
            xyz = self.surface.xyz_from_points(v.face[ys, xs], v.bary[ys, xs])
            self._trees[key] = (cKDTree(xyz), np.stack([xs, ys], 1))
        return self._trees[key]

    def click(self, part: int, face: int, bary: np.ndarray) -> tuple[str, float, float]:
        """Where the simulated person clicks for the true point (face, bary): (view, px, py)."""
        if self.rng.random() < self.confusion:
            I, uv = self.surface.iuv_from_points(np.array([face]), bary[None])
            I2, uv2 = self.surface.flip_iuv(I, uv)
            f2, b2 = self.surface.points_from_iuv(I2, uv2)
            face, bary = int(f2[0]), b2[0]
        target = self.surface.xyz_from_points(np.array([face]), bary[None])[0]
        target = target + self.rng.normal(0.0, self.sigma, 3)
        best = None
        for name in [v.name for v in self.views.views(part)]:
            tree, pix = self._pixels(part, name)
            d, j = tree.query(target)
            if best is None or d < best[0]:
                best = (d, name, pix[j])
        _, name, (x, y) = best
        return name, float(x) + 0.5, float(y) + 0.5


def simulate(project: str | os.PathLike, user_name: str, surface, sigma: float = 0.02, confusion: float = 0.03,
             seed: int = 0, max_persons: int | None = None, progress: bool = True) -> dict:
    """Let a simulated annotator claim and finish tasks as ``user_name`` until none is left."""
    from tqdm import tqdm

    project = Path(project)
    con = db.connect(project)
    try:
        user = db.user_by_name(con, user_name)
    except UserError:
        con.close()
        raise
    store = ViewStore(views_dir(project, surface), lambda: surface)
    sim = SimulatedAnnotator(surface, store, sigma=sigma, confusion=confusion, seed=seed)
    n_persons = n_clicks = n_skips = 0
    total = con.execute("SELECT COUNT(*) FROM persons WHERE stage!='done'").fetchone()[0]
    bar = tqdm(total=total if max_persons is None else min(total, max_persons), desc="simulate", unit="person",
               disable=not progress)
    try:
        while max_persons is None or n_persons < max_persons:
            task = tasks.next_task(con, user)
            if task["kind"] == "none":
                break
            if task["kind"] == "boxes":
                raise UserError(f"image {task['image_id']} has no person boxes; the simulated annotator needs a COCO "
                                "import with --truth")
            person = dict(tasks.person_row(con, user, task["person_id"]))
            if person["truth_instance"] is None:
                raise UserError(f"person {person['id']} has no dense truth; simulate needs `import --truth`")
            if task["stage"] == "parts":
                task = tasks.save_parts(con, user, person["id"], truth_labels(project, person))
            for p in task["points"]:
                if p["status"] != "todo":
                    continue
                truth = true_point(surface, project, person, p["x"], p["y"])
                if truth is None:
                    tasks.skip_point(con, user, p["id"])
                    n_skips += 1
                    continue
                name, px, py = sim.click(p["part"], *truth)
                click_point(con, user, surface, store, project, p["id"], name, px, py)
                n_clicks += 1
            n_persons += 1
            bar.update(1)
    finally:
        bar.close()
        con.close()
    return {"persons": n_persons, "clicks": n_clicks, "skipped": n_skips}


def click_point(con, user, surface, store: ViewStore, project: Path, point_id: int, view: str, px: float,
                py: float) -> dict:
    """A click at (px, py) in view ``view`` of the point's part -> stored answer with (I, U, V) and error."""
    p = con.execute("SELECT * FROM points WHERE id=?", (point_id,)).fetchone()
    if p is None:
        raise tasks.NotFound(f"no point {point_id}")
    person = dict(tasks.person_row(con, user, p["person_id"]))
    try:
        v = store.view(int(p["part"]), view)
    except KeyError:
        raise tasks.BadRequest(f"no view {view!r}") from None
    hit = v.surface_point(px, py)
    if hit is None:
        raise tasks.BadRequest("the click is not on the body")
    face, bary = hit
    I, uv = surface.iuv_from_points(np.array([face]), bary[None])
    error = click_error(surface, project, person, p["x"], p["y"], face, bary)
    return tasks.answer_point(con, user, point_id, face, bary, (int(I[0]), float(uv[0, 0]), float(uv[0, 1])),
                              view, px, py, error)


# ---------------------------------------------------------------------------------------------- the study
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

