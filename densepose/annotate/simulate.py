"""The simulated annotator: a noise model of a person, to run the accuracy study without people."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from densepose.annotate import db, tasks
from densepose.annotate.clicks import click_point
from densepose.annotate.truth import true_point, truth_labels
from densepose.annotate.views import ViewStore, views_dir
from densepose.errors import UserError
from densepose.surface.parts import CHART_TO_MASK_PART


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
            mine = CHART_TO_MASK_PART[np.asarray(self.surface.face_part)[v.face[ys, xs]]] == part
            ys, xs = ys[mine], xs[mine]  # a click must land on the painted part
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
    """Let a simulated annotator claim and finish, as ``user_name``, every task it can do: persons
    with dense truth. Photos, persons without truth and images without boxes are never claimed."""
    from tqdm import tqdm

    project = Path(project)
    con = db.connect(project)
    try:
        user = db.user_by_name(con, user_name)
        if user["is_admin"]:
            raise UserError(f"{user_name!r} is an admin, and admins never claim tasks: simulate as an annotator")
    except UserError:
        con.close()
        raise
    store = ViewStore(views_dir(project, surface), lambda: surface)
    sim = SimulatedAnnotator(surface, store, sigma=sigma, confusion=confusion, seed=seed)
    n_persons = n_clicks = n_skips = 0
    total = con.execute("SELECT COUNT(*) FROM persons WHERE stage!='done' AND truth_instance IS NOT NULL").fetchone()[0]
    bar = tqdm(total=total if max_persons is None else min(total, max_persons), desc="simulate", unit="person",
               disable=not progress)
    try:
        while max_persons is None or n_persons < max_persons:
            task = tasks.next_task(con, user, only_truth=True)
            if task["kind"] != "person":
                break
            person = dict(tasks.person_row(con, user, task["person_id"]))
            if task["stage"] == "parts":
                task = tasks.save_parts(con, user, person["id"], truth_labels(project, person), confirm_empty=True)
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
    left = db.connect(project)
    try:  # what it cannot do (no dense truth, or images without boxes) stays unclaimed for people
        n_left = left.execute("SELECT (SELECT COUNT(*) FROM persons WHERE stage!='done' AND owner IS NULL) + "
                              "(SELECT COUNT(*) FROM images WHERE boxes_done=0 AND boxes_owner IS NULL)").fetchone()[0]
    finally:
        left.close()
    return {"persons": n_persons, "clicks": n_clicks, "skipped": n_skips, "left_for_people": int(n_left)}
