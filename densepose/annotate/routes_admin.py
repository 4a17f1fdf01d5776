"""The campaign owner's routes (admin token): upload, export, dashboard, review, assignment."""
from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from densepose.annotate import db, review
from densepose.annotate.dashboard import dashboard
from densepose.annotate.export import export_coco
from densepose.annotate.importer import add_image
from densepose.annotate.server import Context, HTTPError, endpoint, path_int


def upload_image(ctx: Context, user, request: Request, data: bytes) -> dict:
    name = request.query_params.get("name", "")
    with db.transaction(ctx.con()):
        image_id = add_image(ctx.con(), ctx.project, name, data)
    return {"image_id": image_id}


def export(ctx: Context, user, request: Request, _) -> dict:
    return export_coco(ctx.con())


def progress(ctx: Context, user, request: Request, _) -> dict:
    con = ctx.con()
    rows = con.execute("SELECT stage, COUNT(*) AS n FROM persons GROUP BY stage").fetchall()
    users = con.execute("SELECT u.name, COUNT(p.id) AS points FROM users u LEFT JOIN points p "
                        "ON p.user_id=u.id AND p.status='done' GROUP BY u.id ORDER BY u.name").fetchall()
    return {"persons": {r["stage"]: r["n"] for r in rows}, "clicks_by_user": {r["name"]: r["points"] for r in users}}


def get_dashboard(ctx: Context, user, request: Request, _) -> dict:
    has_replicas = ctx.con().execute("SELECT 1 FROM persons WHERE replica_of IS NOT NULL").fetchone()
    return dashboard(ctx.con(), ctx.surface() if has_replicas else None)


def release(ctx: Context, user, request: Request, _) -> dict:
    review.release(ctx.con(), user, path_int(request, "pid", "person"))
    return {"released": True}


def reopen_person(ctx: Context, user, request: Request, payload: dict) -> dict:
    note = payload.get("note", "")
    if not isinstance(note, str):
        raise HTTPError(400, "note must be text")
    review.reopen_person(ctx.con(), user, path_int(request, "pid", "person"), note=note,
                         rejected=payload.get("reject") is True)
    return {"reopened": True}


def accept(ctx: Context, user, request: Request, _) -> dict:
    review.accept(ctx.con(), user, path_int(request, "pid", "person"))
    return {"accepted": True}


def replicate(ctx: Context, user, request: Request, _) -> dict:
    return {"person_id": review.replicate(ctx.con(), user, path_int(request, "pid", "person"))}


def reopen_image(ctx: Context, user, request: Request, _) -> dict:
    return review.reopen_boxes(ctx.con(), user, path_int(request, "iid", "image"))


def assign(ctx: Context, user, request: Request, payload: dict) -> dict:
    ids, name = payload.get("images"), payload.get("annotator")
    if not (isinstance(ids, list) and len(ids) <= 100_000 and all(isinstance(i, int) for i in ids)):
        raise HTTPError(400, "images must be a list of image ids")
    if name is not None and not isinstance(name, str):
        raise HTTPError(400, "annotator must be a user name or null")
    return {"assigned": review.assign(ctx.con(), user, ids, name)}


def routes(ctx: Context) -> list[Route]:
    def r(path, fn, methods=("GET",), body=None):
        return Route(path, endpoint(ctx, fn, admin=True, body=body), methods=list(methods))

    return [
        r("/api/admin/images", upload_image, ["POST"], "raw"),
        r("/api/admin/export", export),
        r("/api/admin/progress", progress),
        r("/api/admin/dashboard", get_dashboard),
        r("/api/admin/assign", assign, ["POST"], "json"),
        r("/api/admin/images/{iid}/reopen", reopen_image, ["POST"]),
        r("/api/admin/persons/{pid}/release", release, ["POST"]),
        r("/api/admin/persons/{pid}/reopen", reopen_person, ["POST"], "json"),
        r("/api/admin/persons/{pid}/accept", accept, ["POST"]),
        r("/api/admin/persons/{pid}/replicate", replicate, ["POST"]),
    ]
