"""Liveness and readiness probes.

Liveness says only that the process answers (a restart would not help with
anything else). Readiness says whether this instance can serve pulls now: the
database and, with S3 storage, the bucket reachable, the data folder writable.
A load balancer stops sending requests to an instance whose readiness is 503
and resumes when it turns 200 again; each check is bounded in time, so an
unreachable server makes the probe fail rather than hang.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app import db
from app.config import Settings

# Longer than a healthy round trip by far, shorter than a probe's usual timeout.
CHECK_TIMEOUT_SECONDS = 2.0


async def liveness(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _reachable(check: Awaitable[None]) -> str:
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"unreachable: no answer within {CHECK_TIMEOUT_SECONDS:g}s"
    except Exception as error:  # any failure means "not ready", never a 500
        return f"unreachable: {type(error).__name__}"
    return "ok"


async def readiness(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    pending = {"database": _reachable(db.ping())}
    cache = getattr(request.app.state, "cache", None)
    if cache is not None and cache.store.kind == "s3":
        pending["bucket"] = _reachable(cache.store.check())  # a HEAD, cached a few seconds
    results = await asyncio.gather(*pending.values())
    checks = dict(zip(pending, results, strict=True))
    data_dir = settings.data_dir
    writable = data_dir.is_dir() and os.access(data_dir, os.W_OK | os.X_OK)
    checks["data_dir"] = "ok" if writable else "not writable"
    failed = sorted(name for name, value in checks.items() if value != "ok")
    body: dict[str, object] = {"status": "unavailable" if failed else "ok", "checks": checks}
    if failed:
        body["failed"] = failed
    return JSONResponse(body, status_code=503 if failed else 200)


routes = [
    Route("/-/liveness", liveness, methods=["GET", "HEAD"]),
    Route("/-/readiness", readiness, methods=["GET", "HEAD"]),
]
