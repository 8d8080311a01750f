"""Web page routes: every page area's routes plus the static files from `frontend/`."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from web import (
    active_sessions,
    admin,
    admin_docker_hub,
    admin_usage,
    auth,
    graphql_explorer,
    groups,
    passwords,
    tokens,
)

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"
STATIC_PREFIX = "/-/static"

routes: list[BaseRoute] = [
    Mount(STATIC_PREFIX, app=StaticFiles(directory=FRONTEND_DIR, check_dir=False), name="static"),
    *auth.routes,
    *tokens.routes,
    *passwords.routes,
    *active_sessions.routes,
    *admin.routes,
    *admin_docker_hub.routes,
    *admin_usage.routes,
    *graphql_explorer.routes,
    *groups.routes,
]
