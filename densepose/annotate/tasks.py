"""What an annotator can do, independent of HTTP: claim a task, box persons, paint parts, click points.

A *task* is one person (steps 1 and 2) or, for images imported without boxes, one image (step 0:
draw the person boxes). A task belongs to the annotator who claimed it; nobody else but an admin
may read or change it. Every function here is one committed transaction.
"""
from __future__ import annotations

import base64
import json
import sqlite3
import time

import numpy as np

from densepose.annotate import db
from densepose.annotate.sampling import MIN_PART_PIXELS, sample_part_points
from densepose.data.rle import DP_MASK_SIZE, decode_dp_masks, encode_dp_masks
from densepose.surface.parts import NUM_MASK_PARTS


class Forbidden(Exception):
    """The user may not touch this record (HTTP 403)."""


class NotFound(Exception):
    """No such record (HTTP 404)."""


class Conflict(Exception):
    """The record is not in a state that allows this action (HTTP 409)."""


class BadRequest(Exception):
    """Malformed input (HTTP 400)."""


# ---------------------------------------------------------------------------------------------- reading
def person_row(con: sqlite3.Connection, user: sqlite3.Row, person_id: int) -> sqlite3.Row:
    """The person record, if ``user`` owns it (or is admin)."""
    row = con.execute("SELECT * FROM persons WHERE id=?", (person_id,)).fetchone()
    if row is None:
        raise NotFound(f"no person {person_id}")
    if not user["is_admin"] and row["owner"] != user["id"]:
        raise Forbidden(f"person {person_id} is not your task")
    return row


def image_row(con: sqlite3.Connection, user: sqlite3.Row, image_id: int) -> sqlite3.Row:
    """The image record, if ``user`` owns a task on it (or is admin)."""
    row = con.execute("SELECT * FROM images WHERE id=?", (image_id,)).fetchone()
    if row is None:
        raise NotFound(f"no image {image_id}")
    if user["is_admin"] or row["boxes_owner"] == user["id"]:
        return row
    if con.execute("SELECT 1 FROM persons WHERE image_id=? AND owner=?", (image_id, user["id"])).fetchone():
        return row
    raise Forbidden(f"image {image_id} is not part of your tasks")


def person_labels(row: sqlite3.Row) -> np.ndarray:
    """(256, 256) uint8 part labels of a person (zeros before step 1)."""
    if not row["dp_masks"]:
        return np.zeros((DP_MASK_SIZE, DP_MASK_SIZE), dtype=np.uint8)
    return decode_dp_masks(json.loads(row["dp_masks"]))


def person_task(con: sqlite3.Connection, row: sqlite3.Row) -> dict:
    img = con.execute("SELECT * FROM images WHERE id=?", (row["image_id"],)).fetchone()
    pts = con.execute("SELECT * FROM points WHERE person_id=? ORDER BY idx", (row["id"],)).fetchall()
    return {
        "kind": "person",
        "person_id": row["id"],
        "image_id": img["id"],
        "image_size": [img["width"], img["height"]],
        "bbox": [row["x"], row["y"], row["w"], row["h"]],
        "stage": row["stage"],
        "boxed_by_owner": img["boxes_owner"] is not None and img["boxes_owner"] == row["owner"],
        "review": row["review"],
        "review_note": row["review_note"],
        "points": [point_dict(p) for p in pts],
    }


def point_dict(p: sqlite3.Row) -> dict:
    out = {"id": p["id"], "idx": p["idx"], "x": p["x"], "y": p["y"], "part": p["part"], "status": p["status"]}
    if p["status"] == "done":
        out.update(I=p["I"], U=p["U"], V=p["V"], view=p["view"], px=p["px"], py=p["py"])
    return out


UNTOUCHED = ("dp_masks IS NULL AND replica_of IS NULL AND NOT EXISTS "
             "(SELECT 1 FROM persons r WHERE r.replica_of=persons.id)")  # a person nobody has worked on


def box_task(con: sqlite3.Connection, img: sqlite3.Row) -> dict:
    """Step 0 of an image: ``boxes`` (editable: persons nobody has worked on) and ``fixed`` (persons
    with work, kept as they are), both from before a reopen."""
    def boxes(cond: str) -> list:
        rows = con.execute(f"SELECT x, y, w, h FROM persons WHERE image_id=? AND replica_of IS NULL AND {cond} "
                           "ORDER BY id", (img["id"],)).fetchall()
        return [list(r) for r in rows]

    return {"kind": "boxes", "image_id": img["id"], "image_size": [img["width"], img["height"]],
            "boxes": boxes(UNTOUCHED), "fixed": boxes(f"NOT ({UNTOUCHED})")}


# ---------------------------------------------------------------------------------------------- claiming
def next_task(con: sqlite3.Connection, user: sqlite3.Row, only_truth: bool = False) -> dict:
    """The user's unfinished task, else a newly claimed one, else ``{"kind": "none"}``.

    An admin never claims work (``{"kind": "admin"}``): owners review, they do not take tasks from
    annotators. An annotator claims only images assigned to them or to nobody, and never both copies
    of a person (see ``review.replicate``). ``only_truth`` claims only persons with dense truth (what
    the simulated annotator can do) and no step-0 images.
    """
    if user["is_admin"]:
        return {"kind": "admin"}
    uid = user["id"]
    mine = "(i.assignee IS NULL OR i.assignee=:u)"
    truth = " AND p.truth_instance IS NOT NULL" if only_truth else ""
    not_twin = ("NOT EXISTS (SELECT 1 FROM persons q WHERE q.owner=:u AND q.id!=p.id AND "
                "(q.id=p.replica_of OR q.replica_of=p.id OR (p.replica_of IS NOT NULL AND q.replica_of=p.replica_of)))")
    with db.transaction(con):
        ready = "(i.boxes_done=1 OR p.dp_masks IS NOT NULL)"  # in an image back in step 0, persons with work go on
        row = con.execute("SELECT p.* FROM persons p JOIN images i ON i.id=p.image_id WHERE p.owner=:u AND "
                          f"p.stage!='done' AND {ready}{truth} ORDER BY p.id LIMIT 1", {"u": uid}).fetchone()
        if row is not None:
            return person_task(con, row)
        if not only_truth:
            img = con.execute("SELECT * FROM images WHERE boxes_owner=? AND boxes_done=0 ORDER BY id LIMIT 1",
                              (uid,)).fetchone()
            if img is not None:
                return box_task(con, img)
        row = con.execute("SELECT p.* FROM persons p JOIN images i ON i.id=p.image_id WHERE p.owner IS NULL AND "
                          f"p.stage!='done' AND {ready} AND {mine}{truth} AND {not_twin} ORDER BY p.id LIMIT 1",
                          {"u": uid}).fetchone()
        if row is not None:
            con.execute("UPDATE persons SET owner=? WHERE id=?", (uid, row["id"]))
            return person_task(con, con.execute("SELECT * FROM persons WHERE id=?", (row["id"],)).fetchone())
        if not only_truth:
            img = con.execute(f"SELECT * FROM images i WHERE boxes_owner IS NULL AND boxes_done=0 AND {mine} "
                              "ORDER BY id LIMIT 1", {"u": uid}).fetchone()
            if img is not None:
                con.execute("UPDATE images SET boxes_owner=? WHERE id=?", (uid, img["id"]))
                return box_task(con, img)
    return {"kind": "none"}


def list_tasks(con: sqlite3.Connection, user: sqlite3.Row) -> list[dict]:
    """The user's persons (all of them for an admin) with their progress."""
    q = ("SELECT p.id, p.image_id, p.stage, p.owner, "
         "(SELECT COUNT(*) FROM points WHERE person_id=p.id) AS n, "
         "(SELECT COUNT(*) FROM points WHERE person_id=p.id AND status!='todo') AS answered FROM persons p")
    rows = con.execute(q + ("" if user["is_admin"] else " WHERE p.owner=?") + " ORDER BY p.id",
                       () if user["is_admin"] else (user["id"],)).fetchall()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------------------------------------- step 0
def save_boxes(con: sqlite3.Connection, user: sqlite3.Row, image_id: int, boxes: list,
               no_people: bool = False) -> list[int]:
    """Step 0: the person boxes (xywh pixels) of an image imported without them (or reopened);
    they become the user's person tasks, replacing the persons nobody has worked on. An empty
    list closes the image only with ``no_people`` (the annotator confirmed that it shows nobody)."""
    with db.transaction(con):
        img = con.execute("SELECT * FROM images WHERE id=?", (image_id,)).fetchone()
        if img is None:
            raise NotFound(f"no image {image_id}")
        if not user["is_admin"] and img["boxes_owner"] != user["id"]:
            raise Forbidden(f"image {image_id} is not your task")
        if img["boxes_done"]:
            raise Conflict(f"image {image_id} already has its boxes")
        if not isinstance(boxes, list) or len(boxes) > 100:
            raise BadRequest("boxes must be a list of at most 100 [x, y, w, h]")
        fixed = con.execute(f"SELECT COUNT(*) FROM persons WHERE image_id=? AND NOT ({UNTOUCHED})",
                            (image_id,)).fetchone()[0]
        if not boxes and not fixed and not no_people:
            raise BadRequest("no boxes: confirm that the image shows no people")
        # persons nobody has worked on are replaced by ``boxes``; one whose box comes back unchanged
        # stays as it is (with what it was imported with: keypoints, segmentation, ...)
        old = {(r["x"], r["y"], r["w"], r["h"]): r["id"]
               for r in con.execute(f"SELECT * FROM persons WHERE image_id=? AND {UNTOUCHED}", (image_id,))}
        ids = []
        for b in boxes:
            try:
                x, y, w, h = (float(v) for v in b)
            except (TypeError, ValueError):
                raise BadRequest(f"bad box {b!r}") from None
            x, y = max(0.0, x), max(0.0, y)
            w, h = min(w, img["width"] - x), min(h, img["height"] - y)
            if not (w >= 4 and h >= 4):
                raise BadRequest(f"box {b!r} is smaller than 4 pixels or outside the image")
            if (x, y, w, h) in old:
                ids.append(old.pop((x, y, w, h)))
                continue
            cur = con.execute("INSERT INTO persons (image_id, x, y, w, h, extra, owner) VALUES (?,?,?,?,?,?,?)",
                              (image_id, x, y, w, h, db.dumps({"iscrowd": 0}), user["id"]))
            ids.append(int(cur.lastrowid))
        con.executemany("DELETE FROM persons WHERE id=?", [(pid,) for pid in old.values()])
        con.execute("UPDATE images SET boxes_done=1 WHERE id=?", (image_id,))
    return ids


# ---------------------------------------------------------------------------------------------- step 1
def decode_labels_b64(text: str) -> np.ndarray:
    """Base64 of 256*256 raw uint8 labels (row-major) -> (256, 256) array, values checked 0..14."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        raise BadRequest("labels must be base64") from None
    if len(raw) != DP_MASK_SIZE * DP_MASK_SIZE:
        raise BadRequest(f"labels must be {DP_MASK_SIZE}x{DP_MASK_SIZE} bytes, got {len(raw)}")
    labels = np.frombuffer(raw, dtype=np.uint8).reshape(DP_MASK_SIZE, DP_MASK_SIZE)
    if labels.max() > NUM_MASK_PARTS:
        raise BadRequest(f"labels must be 0..{NUM_MASK_PARTS}")
    return labels


def encode_labels_b64(labels: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(labels, dtype=np.uint8).tobytes()).decode("ascii")


def painted_parts(labels: np.ndarray) -> int:
    """How many parts are painted large enough to get step-2 points."""
    counts = np.bincount(np.asarray(labels, dtype=np.uint8).ravel(), minlength=NUM_MASK_PARTS + 1)[1:]
    return int((counts >= MIN_PART_PIXELS).sum())


def save_draft(con: sqlite3.Connection, user: sqlite3.Row, person_id: int, labels: np.ndarray) -> dict:
    """Step 1 autosave: keep the labels painted so far (the person stays in step 1)."""
    with db.transaction(con):
        row = person_row(con, user, person_id)
        if row["stage"] != "parts":
            raise Conflict(f"person {person_id} is not in step 1; go back to step 1 to repaint")
        con.execute("UPDATE persons SET dp_masks=? WHERE id=?", (db.dumps(encode_dp_masks(labels)), person_id))
    return {"saved": True}


def save_parts(con: sqlite3.Connection, user: sqlite3.Row, person_id: int, labels: np.ndarray,
               confirm_empty: bool = False) -> dict:
    """Step 1: store the person's part labels as ``dp_masks`` and sample the step-2 points.

    Answered points that still lie inside their part are kept (with their answers); the others are
    dropped and the parts are sampled afresh, one new point fewer for each kept one nearby. A map
    with no painted part closes the person only with ``confirm_empty``.
    """
    labels = np.asarray(labels, dtype=np.uint8)
    if not painted_parts(labels) and not confirm_empty:
        raise BadRequest("nothing is painted: confirm that the person shows no body part to close it empty")
    with db.transaction(con):
        row = person_row(con, user, person_id)
        if row["replica_of"] is not None:
            raise Conflict(f"person {person_id} is a second annotator's copy: its parts are the first annotator's")
        if row["stage"] == "done":
            raise Conflict(f"person {person_id} is finished; ask the owner to reopen it")
        answered = con.execute("SELECT * FROM points WHERE person_id=? AND status!='todo' ORDER BY idx",
                               (person_id,)).fetchall()
        if answered and row["stage"] != "parts":
            raise Conflict(f"person {person_id} already has answered points: go back to step 1 to repaint")
        kept = [p for p in answered if _label_at(labels, p["x"], p["y"]) == p["part"]]
        xy, part = sample_part_points(labels, seed=person_id)
        xy, part = _drop_nearest(xy, part, kept)
        keep_ids = [p["id"] for p in kept]
        con.execute(f"DELETE FROM points WHERE person_id=? AND id NOT IN ({','.join('?' * len(keep_ids))})",
                    (person_id, *keep_ids))
        for i, pid in enumerate(keep_ids):  # renumber in two passes: (person_id, idx) is unique
            con.execute("UPDATE points SET idx=? WHERE id=?", (-1 - i, pid))
        for i, pid in enumerate(keep_ids):
            con.execute("UPDATE points SET idx=? WHERE id=?", (i, pid))
        con.executemany("INSERT INTO points (person_id, idx, x, y, part) VALUES (?,?,?,?,?)",
                        [(person_id, len(kept) + i, float(p[0]), float(p[1]), int(k))
                         for i, (p, k) in enumerate(zip(xy, part))])
        con.execute("UPDATE persons SET dp_masks=?, stage=? WHERE id=?",
                    (db.dumps(encode_dp_masks(labels)), "points" if len(xy) else "done", row["id"]))
        return person_task(con, con.execute("SELECT * FROM persons WHERE id=?", (person_id,)).fetchone())


def _label_at(labels: np.ndarray, x: float, y: float) -> int:
    col, row = int(np.clip(np.floor(x), 0, DP_MASK_SIZE - 1)), int(np.clip(np.floor(y), 0, DP_MASK_SIZE - 1))
    return int(labels[row, col])


def _drop_nearest(xy: np.ndarray, part: np.ndarray, kept: list) -> tuple[np.ndarray, np.ndarray]:
    """Remove from the new samples (xy (P, 2), part (P,)) the one nearest to each kept point of its part."""
    alive = np.ones(len(xy), dtype=bool)
    for p in kept:
        cand = np.flatnonzero(alive & (part == p["part"]))
        if len(cand):
            d = ((xy[cand] - [p["x"], p["y"]]) ** 2).sum(1)
            alive[cand[np.argmin(d)]] = False
    return xy[alive], part[alive]


# ---------------------------------------------------------------------------------------------- step 2
def _point_for_update(con: sqlite3.Connection, user: sqlite3.Row, point_id: int) -> tuple[sqlite3.Row, sqlite3.Row]:
    p = con.execute("SELECT * FROM points WHERE id=?", (point_id,)).fetchone()
    if p is None:
        raise NotFound(f"no point {point_id}")
    person = person_row(con, user, p["person_id"])
    if person["stage"] == "parts":
        raise Conflict(f"person {person['id']} has no parts yet")
    return p, person


def _finish_if_complete(con: sqlite3.Connection, person_id: int) -> str:
    todo = con.execute("SELECT COUNT(*) FROM points WHERE person_id=? AND status='todo'", (person_id,)).fetchone()[0]
    stage = "points" if todo else "done"
    con.execute("UPDATE persons SET stage=? WHERE id=?", (stage, person_id))
    return stage


def answer_point(con: sqlite3.Connection, user: sqlite3.Row, point_id: int, face: int, bary, iuv: tuple,
                 view: str, px: float, py: float, error: float | None) -> dict:
    """Store a click: the surface point (face, bary), its (I, U, V), where it was clicked, its error."""
    with db.transaction(con):
        p, person = _point_for_update(con, user, point_id)
        seq = con.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM points WHERE person_id=?", (person["id"],)).fetchone()[0]
        con.execute("UPDATE points SET status='done', seq=?, face=?, b0=?, b1=?, b2=?, I=?, U=?, V=?, view=?, px=?, py=?,"
                    " user_id=?, error=?, answered_at=? WHERE id=?",
                    (seq, int(face), *map(float, bary), int(iuv[0]), float(iuv[1]), float(iuv[2]), view,
                     float(px), float(py), user["id"], None if error is None else float(error), time.time(), point_id))
        stage = _finish_if_complete(con, person["id"])
    return {"point_id": point_id, "I": int(iuv[0]), "U": float(iuv[1]), "V": float(iuv[2]), "stage": stage}


def skip_point(con: sqlite3.Connection, user: sqlite3.Row, point_id: int) -> dict:
    """'Not visible / skip': the point gets no correspondence (and is left out of the export)."""
    with db.transaction(con):
        p, person = _point_for_update(con, user, point_id)
        seq = con.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM points WHERE person_id=?", (person["id"],)).fetchone()[0]
        con.execute("UPDATE points SET status='skipped', seq=?, face=NULL, I=NULL, U=NULL, V=NULL, error=NULL,"
                    " user_id=?, answered_at=? WHERE id=?", (seq, user["id"], time.time(), point_id))
        stage = _finish_if_complete(con, person["id"])
    return {"point_id": point_id, "stage": stage}


def undo(con: sqlite3.Connection, user: sqlite3.Row, person_id: int) -> dict:
    """Take back the person's last answer (click or skip); returns the point that is open again."""
    with db.transaction(con):
        person = person_row(con, user, person_id)
        p = con.execute("SELECT * FROM points WHERE person_id=? AND status!='todo' ORDER BY seq DESC LIMIT 1",
                        (person_id,)).fetchone()
        if p is None:
            raise Conflict(f"person {person_id} has nothing to undo")
        con.execute("UPDATE points SET status='todo', seq=NULL, face=NULL, b0=NULL, b1=NULL, b2=NULL, I=NULL, U=NULL,"
                    " V=NULL, view=NULL, px=NULL, py=NULL, user_id=NULL, error=NULL, answered_at=NULL WHERE id=?", (p["id"],))
        con.execute("UPDATE persons SET stage='points' WHERE id=?", (person["id"],))
    return {"point_id": p["id"], "stage": "points"}


def reopen_parts(con: sqlite3.Connection, user: sqlite3.Row, person_id: int) -> None:
    """Go back from step 2 to step 1. Answered points stay; saving the parts again keeps those that
    still lie inside their part."""
    with db.transaction(con):
        row = person_row(con, user, person_id)
        if row["replica_of"] is not None:
            raise Conflict(f"person {person_id} is a second annotator's copy: its parts are the first annotator's")
        if row["stage"] == "done" and not user["is_admin"]:
            raise Conflict(f"person {person_id} is finished; undo its last answer first")
        con.execute("UPDATE persons SET stage='parts' WHERE id=?", (person_id,))


def finish(con: sqlite3.Connection, user: sqlite3.Row, person_id: int) -> dict:
    """Close a person whose points are all answered (e.g. after a reopen) again."""
    with db.transaction(con):
        row = person_row(con, user, person_id)
        if row["stage"] != "points":
            raise Conflict(f"person {person_id} is in stage {row['stage']!r}, not in step 2")
        if _finish_if_complete(con, person_id) != "done":
            raise Conflict(f"person {person_id} still has points to place")
    return {"stage": "done"}
