"""A step-2 click: the pixel of a part view -> the surface point, its (I, U, V) and its error.

A click must land on the part that was painted (the coloured body in the views); a click on the
faded context or off the body is refused with a message saying what it hit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from densepose.annotate import tasks
from densepose.annotate.truth import click_error
from densepose.annotate.views import ViewStore
from densepose.surface.parts import CHART_TO_MASK_PART, MASK_PART_NAMES


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
    part = int(p["part"])
    hit = v.surface_point(px, py, allowed=part_faces(surface, part))
    if hit is None:
        under = v.face_at(px, py)
        if under < 0:
            raise tasks.BadRequest(f"that is off the body: click on the {MASK_PART_NAMES[part - 1]} (in colour)")
        other = MASK_PART_NAMES[int(CHART_TO_MASK_PART[int(surface.face_part[under])]) - 1]
        raise tasks.BadRequest(f"that is the {other}: click on the {MASK_PART_NAMES[part - 1]} (in colour), "
                               "or skip the point if it is not there")
    face, bary = hit
    I, uv = surface.iuv_from_points(np.array([face]), bary[None])
    error = click_error(surface, project, person, p["x"], p["y"], face, bary)
    out = tasks.answer_point(con, user, point_id, face, bary, (int(I[0]), float(uv[0, 0]), float(uv[0, 1])),
                             view, px, py, error)
    out["marks"] = store.marks(part, face)
    return out


def part_faces(surface, part: int) -> np.ndarray:
    """(F,) bool: the faces of coarse part ``part`` (1..14)."""
    return CHART_TO_MASK_PART[np.asarray(surface.face_part)] == part
