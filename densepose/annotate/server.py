"""The HTTP plumbing of the annotation app: the per-project context, request bodies, the
``endpoint`` wrapper (auth, worker thread, errors -> JSON) and the security headers.

Every ``/api`` request carries ``Authorization: Bearer <token>``. Request bodies are size-limited
before they are read, and malformed ones (not JSON, nested too deep) are a 400 with a message.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from densepose.annotate import db, importer, tasks
from densepose.annotate.views import ViewStore, views_dir
from densepose.errors import UserError

MAX_JSON_BYTES = 1 << 20  # a step-1 label map is 87 KB of base64
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'self'; img-src 'self' blob: data:; object-src 'none'"),
]
ERROR_STATUS = {tasks.NotFound: 404, tasks.Forbidden: 403, tasks.Conflict: 409, tasks.BadRequest: 400, UserError: 400}


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Context:
    """One project as the app sees it: a SQLite connection per worker thread, the body surface and
    its rendered views (both loaded on first need)."""

    def __init__(self, project: Path, surface=None):
        self.project = Path(project).resolve()
        db.connect(self.project).close()  # fail early (UserError) on a directory that is not a project
        self._local = threading.local()
        self._surface = surface
        self._store: ViewStore | None = None
        self._lock = threading.Lock()

    def con(self) -> sqlite3.Connection:
        # one connection per worker thread: sqlite3 connections must not be shared mid-transaction
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = db.connect(self.project)
        return con

    def surface(self):
        with self._lock:
            if self._surface is None:
                from densepose.surface import load_surface

                self._surface = load_surface(db.get_meta(self.con(), "surface", "anny"))
            return self._surface

    def store(self) -> ViewStore:
        surface = self.surface()
        with self._lock:
            if self._store is None:
                self._store = ViewStore(views_dir(self.project, surface), lambda: surface)
            return self._store


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
    from densepose.annotate import server  # the limit is read at call time (tests lower it)

    body = await read_body(request, server.MAX_JSON_BYTES)
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPError(400, "body must be JSON") from None
    except RecursionError:
        raise HTTPError(400, "body is JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise HTTPError(400, "body must be a JSON object")
    return data


def path_int(request: Request, key: str, what: str) -> int:
    """An id from the URL path; anything but a short run of digits is a 404."""
    value = request.path_params[key]
    if not value.isdigit() or len(value) > 12:
        raise HTTPError(404, f"bad {what}")
    return int(value)


Handler = Callable[[Context, sqlite3.Row, Request, object], object]


def endpoint(ctx: Context, fn: Handler, admin: bool = False, body: str | None = None):
    """Wrap ``fn(ctx, user, request, payload)`` (run in a worker thread) with auth and errors.

    ``body`` is None (no body), "json", or "raw" (an image file, at most ``importer.MAX_IMAGE_BYTES``).
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
                payload = await read_body(request, importer.MAX_IMAGE_BYTES)

            def work():
                user = db.user_by_token(ctx.con(), token)
                if user is None:
                    raise HTTPError(401, "unknown token")
                if admin and not user["is_admin"]:
                    raise HTTPError(403, "this needs an admin token")
                return fn(ctx, user, request, payload)

            result = await run_in_threadpool(work)
        except HTTPError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except tuple(ERROR_STATUS) as exc:
            return JSONResponse({"error": str(exc)}, status_code=ERROR_STATUS[type(exc)])
        return result if isinstance(result, Response) else JSONResponse(result)

    return handler
