"""The annotation web app (Starlette): the JSON API (``routes_work`` for annotators,
``routes_admin`` for the campaign owner) plus the static front end.

Annotators see only the tasks they claimed; upload, export, the dashboard and review need an admin
token. Files are only ever served from records (image ids, part numbers, view names), never from a
path in the request. ``server`` holds the plumbing (auth, bodies, errors, headers).
"""
from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from densepose.annotate import routes_admin, routes_work
from densepose.annotate.server import Context, SecurityHeaders

STATIC_DIR = Path(__file__).parent / "static"


async def index(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


def create_app(project: str | Path, surface=None) -> SecurityHeaders:
    """The app for one project directory. ``surface`` (a BodySurface) is loaded on first need
    from the project's ``surface`` setting when not given."""
    ctx = Context(Path(project), surface)
    routes = [Route("/", index), *routes_work.routes(ctx), *routes_admin.routes(ctx),
              Mount("/static", StaticFiles(directory=STATIC_DIR), name="static")]
    app = Starlette(routes=routes)
    app.state.project = ctx.project
    return SecurityHeaders(app)
