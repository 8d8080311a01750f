"""Liveness and readiness probes."""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app import db
from app.config import Settings


async def liveness(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readiness(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    checks: dict[str, str] = {}
    try:
        await db.ping()
        checks["database"] = "ok"
    except Exception as error:  # any failure means "not ready", never a 500
        checks["database"] = f"unreachable: {type(error).__name__}"
    data_dir = settings.data_dir
    if data_dir.is_dir() and os.access(data_dir, os.W_OK | os.X_OK):
        checks["data_dir"] = "ok"
    else:
        checks["data_dir"] = "not writable"
    cache = getattr(request.app.state, "cache", None)
    if cache is not None and cache.store.kind == "s3":
        try:
            await cache.store.check()  # a HEAD of the bucket, cached a few seconds
            checks["bucket"] = "ok"
        except Exception as error:
            checks["bucket"] = f"unreachable: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


routes = [
    Route("/-/liveness", liveness, methods=["GET", "HEAD"]),
    Route("/-/readiness", readiness, methods=["GET", "HEAD"]),
]
