"""What a campaign owner (admin) does with finished work: review, reopen, reassign, replicate.

- **Review**: accept a finished person, or reject it with a note (it goes back to its annotator,
  who sees the note); reopen any person or image.
- **Assignment**: images assigned to an annotator are claimed only by them.
- **Replicas**: a second annotator's copy of a person (same parts, same points to place), so that
  agreement between annotators can be measured as the geodesic distance between their answers.
  Copies are left out of the export.
"""
from __future__ import annotations

import sqlite3

import numpy as np

from densepose.annotate import db
from densepose.annotate.tasks import Conflict, Forbidden, NotFound


def _need_admin(user: sqlite3.Row, what: str) -> None:
    if not user["is_admin"]:
        raise Forbidden(f"{what} needs an admin token")


def _person(con: sqlite3.Connection, person_id: int) -> sqlite3.Row:
    row = con.execute("SELECT * FROM persons WHERE id=?", (person_id,)).fetchone()
    if row is None:
        raise NotFound(f"no person {person_id}")
    return row


def release(con: sqlite3.Connection, user: sqlite3.Row, person_id: int) -> None:
    """Give a person task back to the pool (its work so far stays), e.g. for another annotator."""
    _need_admin(user, "releasing a task")
    with db.transaction(con):
        _person(con, person_id)
        con.execute("UPDATE persons SET owner=NULL WHERE id=?", (person_id,))


def reopen_person(con: sqlite3.Connection, user: sqlite3.Row, person_id: int, note: str = "",
                  rejected: bool = False) -> None:
    """Give a person back to its annotator: to step 2 if it has points (they can undo from there),
    else to step 1. ``rejected`` marks it rejected with ``note`` (shown to the annotator)."""
    _need_admin(user, "reopening a person")
    with db.transaction(con):
        _person(con, person_id)
        has_points = con.execute("SELECT 1 FROM points WHERE person_id=?", (person_id,)).fetchone() is not None
        con.execute("UPDATE persons SET stage=?, review=?, review_note=? WHERE id=?",
                    ("points" if has_points else "parts", "rejected" if rejected else "", note[:2000], person_id))


def accept(con: sqlite3.Connection, user: sqlite3.Row, person_id: int) -> None:
    _need_admin(user, "accepting a person")
    with db.transaction(con):
        if _person(con, person_id)["stage"] != "done":
            raise Conflict(f"person {person_id} is not finished")
        con.execute("UPDATE persons SET review='accepted', review_note='' WHERE id=?", (person_id,))


def reopen_boxes(con: sqlite3.Connection, user: sqlite3.Row, image_id: int) -> dict:
    """Back to step 0 for an image, for its boxer (or an admin): the boxes of persons nobody has
    worked on become editable again (``tasks.box_task``); persons with work stay as they are."""
    with db.transaction(con):
        img = con.execute("SELECT * FROM images WHERE id=?", (image_id,)).fetchone()
        if img is None:
            raise NotFound(f"no image {image_id}")
        if not user["is_admin"] and img["boxes_owner"] != user["id"]:
            raise Forbidden(f"image {image_id}: only the annotator who boxed it or an admin may reopen it")
        con.execute("UPDATE images SET boxes_done=0 WHERE id=?", (image_id,))
    return {"image_id": image_id, "reopened": True}


def assign(con: sqlite3.Connection, user: sqlite3.Row, image_ids: list, annotator: str | None) -> int:
    """Assign images to an annotator by name (None: anyone). Persons not started yet follow."""
    _need_admin(user, "assigning images")
    with db.transaction(con):
        uid = None
        if annotator:
            row = con.execute("SELECT id FROM users WHERE name=? AND is_admin=0", (annotator,)).fetchone()
            if row is None:
                raise NotFound(f"no annotator {annotator!r}")
            uid = row["id"]
        n = 0
        for iid in image_ids:
            n += con.execute("UPDATE images SET assignee=? WHERE id=?", (uid, int(iid))).rowcount
            con.execute("UPDATE persons SET owner=NULL WHERE image_id=? AND dp_masks IS NULL AND owner IS NOT NULL "
                        "AND owner IS NOT ?", (int(iid), uid))
    return n


def replicate(con: sqlite3.Connection, user: sqlite3.Row, person_id: int) -> int:
    """A copy of a person's step-2 task for another annotator; returns the copy's id."""
    _need_admin(user, "replicating a person")
    with db.transaction(con):
        row = _person(con, person_id)
        if row["replica_of"] is not None:
            row = _person(con, row["replica_of"])
        pts = con.execute("SELECT idx, x, y, part FROM points WHERE person_id=? ORDER BY idx", (row["id"],)).fetchall()
        if row["stage"] == "parts" or not pts:
            raise Conflict(f"person {row['id']} has no points yet: replicate it after step 1")
        cur = con.execute("INSERT INTO persons (image_id, x, y, w, h, extra, truth_instance, stage, dp_masks, replica_of)"
                          " VALUES (?,?,?,?,?,?,?,?,?,?)", (row["image_id"], row["x"], row["y"], row["w"], row["h"],
                                                           row["extra"], row["truth_instance"], "points",
                                                           row["dp_masks"], row["id"]))
        new_id = int(cur.lastrowid)
        con.executemany("INSERT INTO points (person_id, idx, x, y, part) VALUES (?,?,?,?,?)",
                        [(new_id, p["idx"], p["x"], p["y"], p["part"]) for p in pts])
    return new_id


def agreement(con: sqlite3.Connection, surface) -> dict:
    """Geodesic distance between two annotators' answers to the same point, over every replica.

    Returns ``{"pairs": N, "mean_cm", "median_cm", "by_pair": {"alice/bob": {"pairs", "mean_cm"}}}``.
    """
    rows = con.execute(
        "SELECT a.face AS fa, a.b0 AS a0, a.b1 AS a1, a.b2 AS a2, b.face AS fb, b.b0 AS c0, b.b1 AS c1, b.b2 AS c2, "
        "ua.name AS na, ub.name AS nb FROM persons r JOIN points b ON b.person_id=r.id "
        "JOIN points a ON a.person_id=r.replica_of AND a.idx=b.idx JOIN users ua ON ua.id=a.user_id "
        "JOIN users ub ON ub.id=b.user_id WHERE r.replica_of IS NOT NULL AND a.status='done' AND b.status='done'"
    ).fetchall()
    if not rows:
        return {"pairs": 0, "mean_cm": None, "median_cm": None, "by_pair": {}}
    fa = np.array([r["fa"] for r in rows])
    fb = np.array([r["fb"] for r in rows])
    ba = np.array([[r["a0"], r["a1"], r["a2"]] for r in rows], dtype=np.float64)
    bb = np.array([[r["c0"], r["c1"], r["c2"]] for r in rows], dtype=np.float64)
    dist = np.asarray(surface.geodesics.between_points(fa, ba, fb, bb), dtype=np.float64) * 100
    by_pair: dict[str, list[float]] = {}
    for r, d in zip(rows, dist):
        by_pair.setdefault("/".join(sorted((r["na"], r["nb"]))), []).append(float(d))
    return {"pairs": len(rows), "mean_cm": float(dist.mean()), "median_cm": float(np.median(dist)),
            "by_pair": {k: {"pairs": len(v), "mean_cm": float(np.mean(v))} for k, v in sorted(by_pair.items())}}
