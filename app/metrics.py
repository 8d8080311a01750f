"""Prometheus metrics behind `/metrics` (the same counters the statistics show)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

registry = CollectorRegistry(auto_describe=True)

http_requests = Counter(
    "dockyard_http_requests",
    "HTTP requests by route and status",
    ["route", "status"],
    registry=registry,
)
cache_requests = Counter(
    "dockyard_cache_requests",
    "Dependency proxy lookups by kind (manifest, blob) and result (hit, miss, stale)",
    ["kind", "result"],
    registry=registry,
)
bytes_served = Counter(
    "dockyard_bytes_served",
    "Bytes sent to clients by source (cache, upstream)",
    ["source"],
    registry=registry,
)
upstream_requests = Counter(
    "dockyard_upstream_requests",
    "Requests to upstream registries by status",
    ["status"],
    registry=registry,
)
downloads_in_flight = Gauge(
    "dockyard_downloads_in_flight",
    "Blob downloads from the upstream now running",
    registry=registry,
)
upstream_ratelimit_remaining = Gauge(
    "dockyard_upstream_ratelimit_remaining",
    "Last ratelimit-remaining seen from the upstream",
    ["upstream"],
    registry=registry,
)
