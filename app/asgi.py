"""The composition root: one Starlette application with every surface mounted.

This is the only module that imports the surfaces (`registry`, `web`, the
HTTP API `app.api`); they never import one another. Every request is
authenticated once, here, by `app.identity` (see docs/architecture.md).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from app import db, health, metrics
from app.accounts import housekeeping, user_sessions
from app.config import Settings, load_settings, prepare_data_dir
from app.dependency_proxy.cleanup import run_cleanup_forever
from app.dependency_proxy.services.run_warm_job import run_warm_jobs_forever
from app.external_url import ExternalUrlCheck, HostMismatches
from app.identity import DockyardAuthentication, principal_of
from app.logging import AccessLogMiddleware
from app.request_limits import RequestBodyLimit
from app.runtime import Runtime

log = logging.getLogger("dockyard")

SESSION_COOKIE = "_dockyard_session"
# The cookie lives as long as an idle server-side session (which is what counts).
SESSION_MAX_AGE = int(user_sessions.IDLE_LIFETIME.total_seconds())


MACHINE_PREFIXES = ("/v2", "/api/", "/jwt/", "/-/", "/metrics")


def _wants_page(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def _error_page(request: Request, status: int, message: str) -> Response:
    """The site's own error page, signed-in header included."""
    from web.rendering import error_page

    return error_page(request, status, message, principal_of(request))


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    if request.url.path.startswith("/v2"):
        return _registry_error(status)
    if status == 404 and _wants_page(request) and not request.url.path.startswith(MACHINE_PREFIXES):
        return await _error_page(request, 404, "There is no page at this address.")
    message = {404: "not found", 405: "method not allowed"}.get(status, "error")
    return JSONResponse({"error": message}, status_code=status)


def _registry_error(status: int) -> Response:
    """Under /v2 every error is the OCI envelope: registry clients show nothing else."""
    from registry.errors import oci_error

    if status == 405:
        return oci_error(
            405, "UNSUPPORTED", "the Dependency Proxy is read-only: method not allowed"
        )
    if status == 404:
        return oci_error(404, "NAME_UNKNOWN", "no such registry endpoint")
    return oci_error(status, "UNKNOWN", "the request cannot be answered")


async def _server_error(request: Request, exc: Exception) -> Response:
    status, code, message = 500, "UNKNOWN", "internal error: the server log has the details"
    if db.is_busy(exc):
        # Not a bug: another process held the database's write lock for too long.
        log.warning("%s on %s %s", db.BUSY_MESSAGE, request.method, request.url.path)
        status, code, message = 503, "UNAVAILABLE", db.BUSY_MESSAGE
    else:
        # Log the traceback for operators; the client never sees it.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    headers = {"Retry-After": "1"} if status == 503 else {}
    if request.url.path.startswith("/v2"):
        from registry.errors import oci_error  # registry clients only show OCI errors

        return oci_error(status, code, message, headers=headers)
    error = message if status == 503 else "internal server error"
    return JSONResponse({"error": error}, status_code=status, headers=headers)


async def _body_too_large(request: Request, message: str) -> Response:
    """A refused request body (app/request_limits.py), in each surface's own form."""
    path = request.url.path
    if path.startswith("/api/graphql"):
        return JSONResponse({"errors": [{"message": message}]}, status_code=413)
    if path.startswith(("/jwt/", "/v2")):
        from registry.errors import oci_error

        return oci_error(413, "SIZE_INVALID", message)
    if _wants_page(request):
        return await _error_page(request, 413, message)
    return JSONResponse({"error": message}, status_code=413)


def _routes(settings: Settings) -> list[BaseRoute]:
    from app.api.routes import routes as api_routes
    from registry.internal import routes as internal_routes
    from registry.routes import routes as registry_routes
    from web.routes import routes as web_routes

    return [*health.routes, *internal_routes, *registry_routes, *api_routes, *web_routes]


def create_app(settings: Settings | None = None) -> Starlette:
    settings = prepare_data_dir(settings or load_settings())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.init_db(settings)
        runtime = Runtime.build(settings)
        app.state.runtime = runtime
        app.state.cache = runtime.cache
        try:
            await runtime.start()
            runtime.background(
                run_cleanup_forever(runtime.cache, settings.cleanup_interval_seconds),
                "cache cleanup",
            )
            runtime.background(
                run_warm_jobs_forever(runtime.cache, settings, settings.warm_poll_seconds),
                "cache warm jobs",
            )
            runtime.every(housekeeping.SWEEP_SECONDS, housekeeping.sweep, "accounts sweep")
            yield
        finally:
            await runtime.close()
            await db.close_db()

    host_mismatches = HostMismatches(settings.external_url, settings.trusted_proxies)
    app = Starlette(
        routes=_routes(settings),
        lifespan=lifespan,
        middleware=[
            # Outermost: the request id is set before anything else logs.
            Middleware(AccessLogMiddleware),
            Middleware(ExternalUrlCheck, mismatches=host_mismatches),
            Middleware(
                SessionMiddleware,
                secret_key=settings.secret_key,
                session_cookie=SESSION_COOKIE,
                max_age=SESSION_MAX_AGE,
                same_site="lax",
                https_only=urlsplit(settings.external_url).scheme == "https",
            ),
            # Inside the session middleware (it reads the session cookie): every
            # request becomes a principal, once, for every surface.
            Middleware(AuthenticationMiddleware, backend=DockyardAuthentication(settings)),
            # Inside authentication: the error page shows who is signed in.
            Middleware(
                RequestBodyLimit,
                max_bytes=settings.max_body_bytes,
                too_large=_body_too_large,
                unlimited=("/v2",),  # read-only: its routes never read a body
            ),
        ],
        exception_handlers={404: _not_found, 405: _not_found, 500: _server_error},
    )
    app.state.settings = settings
    metrics.instance_info.info({"name": settings.instance_name})
    app.state.host_mismatches = host_mismatches  # shown on the admin page
    return app
