"""Prometheus metrics behind `/metrics` (the same counters the statistics show)."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.accounts.services import authenticate_personal_access_token

registry = CollectorRegistry(auto_describe=True)

http_requests = Counter(
    "dockyard_http_requests",
    "HTTP requests by route and status",
    ["route", "status"],
    registry=registry,
)
cache_requests = Counter(
    "dockyard_cache_requests",
    "Dependency proxy lookups by kind (manifest, blob, tags, referrers) and result "
    "(hit, miss, stale)",
    ["kind", "result"],
    registry=registry,
)
negative_cache_hits = Counter(
    "dockyard_negative_cache_hits",
    "Tag requests answered 404 from memory: the upstream said it lacks the tag moments ago "
    "(DOCKYARD_NEGATIVE_CACHE_SECONDS), so it was not asked again",
    registry=registry,
)
auth_throttled = Counter(
    "dockyard_auth_throttled",
    "Password checks refused by the guessing throttle, by surface (web, registry, password_change)",
    ["surface"],
    registry=registry,
)
bytes_served = Counter(
    "dockyard_bytes_served",
    "Bytes sent to clients by source (cache, upstream)",
    ["source"],
    registry=registry,
)


class RuntimeCollector:
    """Reads the live figures from the process's Runtime at scrape time:
    upstream responses by status, downloads in flight, rate-limit headroom."""

    def __init__(self) -> None:
        self.runtime: Any = None

    def collect(self) -> Iterator[Metric]:
        runtime = self.runtime
        if runtime is None:
            return
        upstream = CounterMetricFamily(
            "dockyard_upstream_requests", "Upstream responses by status", labels=["status"]
        )
        for status, count in sorted(runtime.upstream.request_counts.items()):
            upstream.add_metric([status], count)
        yield upstream
        yield GaugeMetricFamily(
            "dockyard_downloads_in_flight",
            "Blob downloads from the upstream now running in this process",
            value=runtime.downloads.active_count,
        )
        rate_limit = runtime.upstream.rate_limit
        if rate_limit is not None and rate_limit.remaining is not None:
            remaining = GaugeMetricFamily(
                "dockyard_upstream_ratelimit_remaining",
                "Last ratelimit-remaining seen from the upstream",
                labels=["upstream"],
            )
            remaining.add_metric([runtime.settings.upstream_url], rate_limit.remaining)
            yield remaining


runtime_collector = RuntimeCollector()
registry.register(runtime_collector)


# --- the /metrics endpoint ------------------------------------------------------------
#
# Restricted: with DOCKYARD_METRICS_TOKEN set, Prometheus sends it as a bearer
# token; without it, only instance admins (personal access token) may read.
# Strangers get 404, so the endpoint does not advertise itself.


async def _allowed(request: Request) -> bool | None:
    """True: allowed; False: credentials missing or wrong (401); None: hide it (404)."""
    settings = request.app.state.settings
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    presented = presented.strip() if scheme.lower() == "bearer" else ""
    if settings.metrics_token:
        if not presented:
            return False
        return hmac.compare_digest(presented.encode(), settings.metrics_token.encode())
    token = presented or request.headers.get("private-token", "").strip()
    if not token:
        return False
    principal = await authenticate_personal_access_token(token)
    if principal is None:
        return False
    return True if principal.is_admin and principal.has_scope("read_api") else None


async def metrics_endpoint(request: Request) -> Response:
    allowed = await _allowed(request)
    if allowed is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    if not allowed:
        return JSONResponse(
            {"error": "unauthorized"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


routes: list[BaseRoute] = [Route("/metrics", metrics_endpoint, methods=["GET"])]
