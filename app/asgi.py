"""The composition root: one Starlette application with every surface mounted."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from app import db, health
from app.config import Settings, load_settings, prepare_data_dir
from app.logging import AccessLogMiddleware

log = logging.getLogger("dockyard")


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    message = {404: "not found", 405: "method not allowed"}.get(status, "error")
    return JSONResponse({"error": message}, status_code=status)


async def _server_error(request: Request, exc: Exception) -> Response:
    # Log the traceback for operators; the client never sees it.
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal server error"}, status_code=500)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = prepare_data_dir(settings or load_settings())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.init_db(settings)
        try:
            yield
        finally:
            await db.close_db()

    routes: list[BaseRoute] = [*health.routes]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(AccessLogMiddleware)],
        exception_handlers={404: _not_found, 405: _not_found, 500: _server_error},
    )
    app.state.settings = settings
    return app
