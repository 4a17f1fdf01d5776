"""The annotator's routes: tasks, the three steps, part views and images."""
from __future__ import annotations

import numpy as np
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from densepose.annotate import db, review, tasks
from densepose.annotate.clicks import click_point
from densepose.annotate.server import Context, HTTPError, endpoint, path_int
from densepose.annotate.views import PART_VIEWS, body_diagram_png, part_colors
from densepose.surface.parts import MASK_PART_NAMES, NUM_MASK_PARTS


def me(ctx: Context, user, request: Request, _) -> dict:
    return {"name": user["name"], "is_admin": bool(user["is_admin"])}


def parts(ctx: Context, user, request: Request, _) -> dict:
    return {"names": list(MASK_PART_NAMES), "colors": part_colors()[1:].tolist()}


def next_task(ctx: Context, user, request: Request, _) -> dict:
    return tasks.next_task(ctx.con(), user)


def list_tasks(ctx: Context, user, request: Request, _) -> dict:
    return {"tasks": tasks.list_tasks(ctx.con(), user)}


def get_person(ctx: Context, user, request: Request, _) -> dict:
    return tasks.person_task(ctx.con(), tasks.person_row(ctx.con(), user, path_int(request, "pid", "person")))


def get_labels(ctx: Context, user, request: Request, _) -> dict:
    row = tasks.person_row(ctx.con(), user, path_int(request, "pid", "person"))
    return {"labels": tasks.encode_labels_b64(tasks.person_labels(row))}


def put_parts(ctx: Context, user, request: Request, payload: dict) -> dict:
    labels = tasks.decode_labels_b64(payload.get("labels", ""))
    return tasks.save_parts(ctx.con(), user, path_int(request, "pid", "person"), labels,
                            confirm_empty=payload.get("confirm_empty") is True)


def put_draft(ctx: Context, user, request: Request, payload: dict) -> dict:
    labels = tasks.decode_labels_b64(payload.get("labels", ""))
    return tasks.save_draft(ctx.con(), user, path_int(request, "pid", "person"), labels)


def reopen(ctx: Context, user, request: Request, _) -> dict:
    pid = path_int(request, "pid", "person")
    tasks.reopen_parts(ctx.con(), user, pid)
    return tasks.person_task(ctx.con(), tasks.person_row(ctx.con(), user, pid))


def undo(ctx: Context, user, request: Request, _) -> dict:
    return tasks.undo(ctx.con(), user, path_int(request, "pid", "person"))


def finish(ctx: Context, user, request: Request, _) -> dict:
    return tasks.finish(ctx.con(), user, path_int(request, "pid", "person"))


def click(ctx: Context, user, request: Request, payload: dict) -> dict:
    try:
        view, px, py = str(payload["view"]), float(payload["px"]), float(payload["py"])
    except (KeyError, TypeError, ValueError, OverflowError):
        raise HTTPError(400, "a click needs view, px, py") from None
    if not (np.isfinite(px) and np.isfinite(py)):
        raise HTTPError(400, "px, py must be finite")
    return click_point(ctx.con(), user, ctx.surface(), ctx.store(), ctx.project, path_int(request, "qid", "point"),
                       view, px, py)


def skip(ctx: Context, user, request: Request, _) -> dict:
    return tasks.skip_point(ctx.con(), user, path_int(request, "qid", "point"))


def get_image(ctx: Context, user, request: Request, _) -> Response:
    img = tasks.image_row(ctx.con(), user, path_int(request, "iid", "image"))
    path = db.inside(ctx.project / "images", img["file_name"])
    if not path.is_file():
        raise HTTPError(404, "image file missing")
    media = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
    return FileResponse(path, media_type=media, headers={"cache-control": "private, max-age=3600"})


def post_boxes(ctx: Context, user, request: Request, payload: dict) -> dict:
    ids = tasks.save_boxes(ctx.con(), user, path_int(request, "iid", "image"), payload.get("boxes"),
                           no_people=payload.get("no_people") is True)
    return {"person_ids": ids}


def reopen_boxes(ctx: Context, user, request: Request, _) -> dict:
    return review.reopen_boxes(ctx.con(), user, path_int(request, "iid", "image"))


def list_views(ctx: Context, user, request: Request, _) -> dict:
    part = path_int(request, "part", "part")
    if not 1 <= part <= NUM_MASK_PARTS:
        raise HTTPError(404, "part must be 1..14")
    views = ctx.store().views(part)
    return {"part": part, "name": MASK_PART_NAMES[part - 1],
            "views": [{"name": v.name, "width": v.rgb.shape[1], "height": v.rgb.shape[0],
                       "url": f"/api/views/{part}/{v.name}.png"} for v in views]}


def view_png(ctx: Context, user, request: Request, _) -> Response:
    part = path_int(request, "part", "part")
    name = request.path_params["name"]
    if part not in PART_VIEWS or name not in PART_VIEWS[part]:
        raise HTTPError(404, "no such view")
    try:
        png = ctx.store().png(part, name)
    except KeyError:
        raise HTTPError(404, "no such view") from None
    return Response(png, media_type="image/png",
                    headers={"cache-control": "private, max-age=86400"})


def diagram_png(ctx: Context, user, request: Request, _) -> Response:
    return Response(body_diagram_png(ctx.store(), ctx.surface()), media_type="image/png",
                    headers={"cache-control": "private, max-age=86400"})


def routes(ctx: Context) -> list[Route]:
    def r(path, fn, methods=("GET",), body=None):
        return Route(path, endpoint(ctx, fn, body=body), methods=list(methods))

    return [
        r("/api/me", me),
        r("/api/parts", parts),
        r("/api/diagram.png", diagram_png),
        r("/api/tasks", list_tasks),
        r("/api/tasks/next", next_task, ["POST"]),
        r("/api/persons/{pid}", get_person),
        r("/api/persons/{pid}/labels", get_labels),
        r("/api/persons/{pid}/parts", put_parts, ["PUT"], "json"),
        r("/api/persons/{pid}/draft", put_draft, ["PUT"], "json"),
        r("/api/persons/{pid}/reopen", reopen, ["POST"]),
        r("/api/persons/{pid}/undo", undo, ["POST"]),
        r("/api/persons/{pid}/finish", finish, ["POST"]),
        r("/api/points/{qid}/click", click, ["POST"], "json"),
        r("/api/points/{qid}/skip", skip, ["POST"]),
        r("/api/images/{iid}", get_image),
        r("/api/images/{iid}/boxes", post_boxes, ["POST"], "json"),
        r("/api/images/{iid}/reopen", reopen_boxes, ["POST"]),
        r("/api/views/{part}", list_views),
        r("/api/views/{part}/{name}.png", view_png),
    ]
