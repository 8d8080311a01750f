"""The Prometheus counters (the same figures the statistics show), for every layer to count
with. Core: it imports nothing from Starlette or the domains; the `/metrics`
endpoint that serves them is the API surface's (`app/api/metrics.py`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

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
evicted_images = Counter(
    "dockyard_evicted_images",
    "Cached images evicted by the size limits, by reason (group_limit, instance_budget, disk_full)",
    ["reason"],
    registry=registry,
)
evicted_bytes = Counter(
    "dockyard_evicted_bytes",
    "Bytes the evicted images took in their groups' totals, by reason",
    ["reason"],
    registry=registry,
)

# `dockyard_instance_info{name="..."} 1`: which instance a scrape came from, for
# joining with other series when several run behind one load balancer.
instance_info = Info(
    "dockyard_instance", "This instance (DOCKYARD_INSTANCE_NAME)", registry=registry
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
        yield from _disk(runtime)
        rate_limit = runtime.upstream.rate_limit
        if rate_limit is not None and rate_limit.remaining is not None:
            remaining = GaugeMetricFamily(
                "dockyard_upstream_ratelimit_remaining",
                "Last ratelimit-remaining seen from the upstream",
                labels=["upstream"],
            )
            remaining.add_metric([runtime.settings.upstream_url], rate_limit.remaining)
            yield remaining


def _disk(runtime: Any) -> Iterator[Metric]:
    """Free space of the data folder, and the cache's size against its budget (as the
    last eviction pass measured them: the budget may be an admin's, in the database)."""
    try:
        found = os.statvfs(runtime.settings.data_dir)
    except OSError:
        pass
    else:
        yield GaugeMetricFamily(
            "dockyard_data_dir_free_bytes",
            "Free space of the file system holding the data folder",
            value=found.f_bavail * found.f_frsize,
        )
        yield GaugeMetricFamily(
            "dockyard_data_dir_size_bytes",
            "Size of the file system holding the data folder",
            value=found.f_blocks * found.f_frsize,
        )
    usage = runtime.cache.usage
    if usage is not None:
        yield GaugeMetricFamily(
            "dockyard_cache_bytes",
            "Bytes the groups' caches hold (their totals summed), at the last eviction pass",
            value=usage[0],
        )
        yield GaugeMetricFamily(
            "dockyard_disk_budget_bytes",
            "The instance's disk budget for cached bytes (0: none), at the last eviction pass",
            value=usage[1],
        )


runtime_collector = RuntimeCollector()
registry.register(runtime_collector)
