"""The campaign owner's overview: progress per image and per annotator, throughput, skipped
points, the review queue and inter-annotator agreement."""
from __future__ import annotations

import sqlite3

import numpy as np

from densepose.annotate.review import agreement

ACTIVE_GAP_S = 300.0  # answers further apart than this are separate work sessions (the pause does not count)


def active_hours(times: list[float]) -> float:
    """Working time implied by answer times (s): the gaps between answers, pauses over
    ``ACTIVE_GAP_S`` left out."""
    t = np.sort(np.asarray(times, dtype=np.float64))
    if len(t) < 2:
        return 0.0
    gaps = np.diff(t)
    return float(gaps[gaps <= ACTIVE_GAP_S].sum() / 3600.0)


def dashboard(con: sqlite3.Connection, surface=None) -> dict:
    """Everything the dashboard page shows. ``surface`` (for agreement) may be None."""
    images = [dict(r) for r in con.execute(
        "SELECT i.id, i.file_name, i.boxes_done, u.name AS assignee, b.name AS boxer, "
        "(SELECT COUNT(*) FROM persons p WHERE p.image_id=i.id AND p.replica_of IS NULL) AS persons, "
        "(SELECT COUNT(*) FROM persons p WHERE p.image_id=i.id AND p.replica_of IS NULL AND p.stage='done') AS done, "
        "(SELECT COUNT(*) FROM points q JOIN persons p ON p.id=q.person_id WHERE p.image_id=i.id) AS points, "
        "(SELECT COUNT(*) FROM points q JOIN persons p ON p.id=q.person_id WHERE p.image_id=i.id AND q.status!='todo')"
        " AS answered FROM images i LEFT JOIN users u ON u.id=i.assignee LEFT JOIN users b ON b.id=i.boxes_owner "
        "ORDER BY i.id")]
    annotators = []
    for u in con.execute("SELECT id, name FROM users WHERE is_admin=0 ORDER BY name").fetchall():
        answers = con.execute("SELECT status, answered_at, error FROM points WHERE user_id=? AND status!='todo'",
                              (u["id"],)).fetchall()
        errors = [a["error"] for a in answers if a["error"] is not None]  # on images with dense truth
        hours = active_hours([a["answered_at"] for a in answers if a["answered_at"] is not None])
        done = sum(a["status"] == "done" for a in answers)
        annotators.append({
            "name": u["name"],
            "persons_open": con.execute("SELECT COUNT(*) FROM persons WHERE owner=? AND stage!='done'",
                                        (u["id"],)).fetchone()[0],
            "persons_done": con.execute("SELECT COUNT(*) FROM persons WHERE owner=? AND stage='done'",
                                        (u["id"],)).fetchone()[0],
            "points": done, "skipped": len(answers) - done, "active_hours": hours,
            "points_per_hour": (len(answers) / hours) if hours > 0 else None,
            "mean_error_cm": float(np.mean(errors) * 100) if errors else None,
        })
    review = [dict(r) for r in con.execute(
        "SELECT p.id AS person_id, p.image_id, u.name AS owner, p.stage, p.review, p.review_note, p.replica_of, "
        "(SELECT COUNT(*) FROM points q WHERE q.person_id=p.id AND q.status='done') AS placed, "
        "(SELECT COUNT(*) FROM points q WHERE q.person_id=p.id AND q.status='skipped') AS skipped "
        "FROM persons p LEFT JOIN users u ON u.id=p.owner WHERE (p.stage='done' AND p.review!='accepted') "
        "OR p.review='rejected' ORDER BY p.id")]
    counts = dict(con.execute("SELECT stage, COUNT(*) FROM persons WHERE replica_of IS NULL GROUP BY stage").fetchall())
    totals = {
        "images": len(images),
        "images_without_boxes": sum(not i["boxes_done"] for i in images),
        "persons": {s: counts.get(s, 0) for s in ("parts", "points", "done")},
        "points_placed": con.execute("SELECT COUNT(*) FROM points WHERE status='done'").fetchone()[0],
        "points_skipped": con.execute("SELECT COUNT(*) FROM points WHERE status='skipped'").fetchone()[0],
        "accepted": con.execute("SELECT COUNT(*) FROM persons WHERE review='accepted'").fetchone()[0],
    }
    has_replicas = con.execute("SELECT 1 FROM persons WHERE replica_of IS NOT NULL").fetchone() is not None
    agree = agreement(con, surface) if (surface is not None and has_replicas) else {"pairs": 0, "by_pair": {}}
    users = [r[0] for r in con.execute("SELECT name FROM users WHERE is_admin=0 ORDER BY name")]
    return {"totals": totals, "images": images, "annotators": annotators, "review": review, "agreement": agree,
            "users": users}
