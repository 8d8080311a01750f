"""`/metrics`: the Prometheus counters (`app.metrics`), never open to everyone.

With DOCKYARD_METRICS_TOKEN set, Prometheus sends it as a bearer token (the only
key then); without it, administrators' tokens (any API scope) may read. No or
wrong credentials: 401; anyone else: 404, so the endpoint does not advertise itself.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.errors import NotFound
from app.identity import principal_of
from app.instance.monitoring import metrics_exposition


async def metrics_endpoint(request: Request) -> Response:
    principal = principal_of(request)
    if principal is None:
        return JSONResponse(
            {"error": "unauthorized"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    try:
        body = metrics_exposition(principal)
    except NotFound:
        return JSONResponse({"error": "not found"}, status_code=404)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


routes: list[BaseRoute] = [Route("/metrics", metrics_endpoint, methods=["GET"])]
