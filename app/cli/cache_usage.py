"""`dockyard cache usage GROUP [--daily] [--json]`: the group's usage over time.

The same checked service as the page's charts and GraphQL's
`dependencyProxyUsage` (`services/get_usage.py`), read from the database: what
the servers have flushed (every few seconds), not a running server's memory.
"""

from __future__ import annotations

from typing import Any

import click

from app import clock
from app.cli.cache import cache
from app.cli.common import OPERATOR, emit, json_option, run
from app.config import Settings
from app.groups import services as groups


@cache.command("usage")
@click.argument("group_path")
@click.option("--daily", is_flag=True, help="The last 30 days (default: the last 24 hours).")
@json_option
def cache_usage(group_path: str, daily: bool, as_json: bool) -> None:
    """Pulls, hits, misses and bytes of GROUP_PATH's cache per hour (or day), with the
    bytes and Docker Hub pulls the cache saved."""
    from app.config import human_size
    from app.dependency_proxy.services.get_usage import UsageReport, get_group_usage
    from app.dependency_proxy.usage import DAILY, HOURLY

    async def work(settings: Settings) -> tuple[str, UsageReport]:
        group = await groups.find_readable_group(OPERATOR, group_path)
        report = await get_group_usage(
            OPERATOR, group, None, period=DAILY if daily else HOURLY, now=clock.now()
        )
        return group.full_path, report

    path, report = run(work)
    points: list[dict[str, Any]] = [
        {
            "starts_at": point.starts_at,
            "pulls": point.pulls,
            "hits": point.hits,
            "misses": point.misses,
            "bytes_from_cache": point.bytes_from_cache,
            "bytes_from_upstream": point.bytes_from_upstream,
            "upstream_requests": point.upstream_requests,
            "rate_limit_remaining": point.rate_limit_remaining,
        }
        for point in report.points
    ]
    width = "%Y-%m-%d" if daily else "%Y-%m-%d %H:00"
    lines = [
        f"{path}: {report.pulls} pulls, {human_size(report.bytes_saved)} saved, "
        f"{report.docker_hub_pulls_saved} Docker Hub pulls saved "
        f"({'last 30 days' if daily else 'last 24 hours'}, UTC)",
        f"{'period':<16} {'pulls':>6} {'hits':>6} {'misses':>6} "
        f"{'from cache':>11} {'from upstream':>14} {'upstream':>8} {'headroom':>8}",
    ]
    for point in report.points:
        if not (point.pulls or point.bytes_from_cache or point.upstream_requests):
            continue
        headroom = "-" if point.rate_limit_remaining is None else str(point.rate_limit_remaining)
        lines.append(
            f"{point.starts_at.strftime(width):<16} {point.pulls:>6} {point.hits:>6} "
            f"{point.misses:>6} {human_size(point.bytes_from_cache):>11} "
            f"{human_size(point.bytes_from_upstream):>14} {point.upstream_requests:>8} "
            f"{headroom:>8}"
        )
    data = {
        "group": path,
        "period": report.period,
        "starts_at": report.starts_at,
        "ends_at": report.ends_at,
        "bytes_saved": report.bytes_saved,
        "docker_hub_pulls_saved": report.docker_hub_pulls_saved,
        "points": points,
    }
    emit(as_json, data, "\n".join(lines))
