"""The Dependency Proxy page's usage charts: server-rendered SVG, no script, no library.

Turns a usage report (`services/get_usage.py`) into the geometry of a stacked bar
chart (hits below, misses above, one bar per hour or day) that the template
`dependency_proxy_usage.html` draws; every bar carries a `<title>` so a pointer
shows its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from app import clock
from app.accounts.principal import Principal
from app.dependency_proxy.services.get_usage import UsagePoint, UsageReport, get_group_usage
from app.dependency_proxy.usage import DAILY, HOURLY
from app.groups.models import Group
from web.rendering import human_size

WIDTH = 720
HEIGHT = 160
LEFT = 40  # room for the y-axis labels
BOTTOM = 20  # room for the x-axis labels
TOP = 8


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    hits_y: float
    hits_height: float
    misses_y: float
    misses_height: float
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    css_id: str
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    top_label: str  # the y axis's maximum
    pulls: int
    hits: int
    misses: int
    bytes_from_cache: int
    bytes_from_upstream: int
    upstream_requests: int
    lowest_remaining: int | None
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: int = HEIGHT - BOTTOM


@dataclass(frozen=True)
class UsageCharts:
    hourly: Chart
    daily: Chart
    bytes_saved: int
    docker_hub_pulls_saved: int


def _title(point: UsagePoint, hourly: bool) -> str:
    when = point.starts_at.strftime("%Y-%m-%d %H:00 UTC" if hourly else "%Y-%m-%d")
    remaining = (
        ""
        if point.rate_limit_remaining is None
        else (f", rate limit left {point.rate_limit_remaining}")
    )
    return (
        f"{when}: {point.pulls} pulls ({point.hits} hits, {point.misses} misses), "
        f"{human_size(point.bytes_from_cache)} from cache, "
        f"{human_size(point.bytes_from_upstream)} from upstream, "
        f"{point.upstream_requests} upstream requests{remaining}"
    )


def chart_of(report: UsageReport, title: str, css_id: str) -> Chart:
    hourly = report.period == HOURLY
    points = report.points
    tallest = max((point.pulls for point in points), default=0) or 1
    plot_height = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(len(points), 1)
    bars: list[Bar] = []
    ticks: list[Tick] = []
    every = 6 if hourly else 7
    for index, point in enumerate(points):
        x = LEFT + index * slot
        hits_height = plot_height * point.hits / tallest
        misses_height = plot_height * point.misses / tallest
        baseline = HEIGHT - BOTTOM
        bars.append(
            Bar(
                x=round(x + slot * 0.1, 2),
                width=round(slot * 0.8, 2),
                hits_y=round(baseline - hits_height, 2),
                hits_height=round(hits_height, 2),
                misses_y=round(baseline - hits_height - misses_height, 2),
                misses_height=round(misses_height, 2),
                title=_title(point, hourly),
            )
        )
        if index % every == 0:
            label = point.starts_at.strftime("%H:00" if hourly else "%b %d")
            ticks.append(Tick(x=round(x + slot / 2, 2), label=label))
    remaining = [p.rate_limit_remaining for p in points if p.rate_limit_remaining is not None]
    return Chart(
        title=title,
        css_id=css_id,
        bars=tuple(bars),
        ticks=tuple(ticks),
        top_label=str(tallest),
        pulls=sum(point.pulls for point in points),
        hits=sum(point.hits for point in points),
        misses=sum(point.misses for point in points),
        bytes_from_cache=sum(point.bytes_from_cache for point in points),
        bytes_from_upstream=sum(point.bytes_from_upstream for point in points),
        upstream_requests=sum(point.upstream_requests for point in points),
        lowest_remaining=min(remaining) if remaining else None,
    )


async def usage_charts(request: Request, principal: Principal, group: Group) -> UsageCharts:
    """The last 24 hours and the last 30 days of the group (whoever may read it)."""
    runtime = getattr(request.app.state, "runtime", None)
    statistics = runtime.statistics if runtime else None
    now = clock.now()
    hours = await get_group_usage(principal, group, statistics, period=HOURLY, now=now)
    days = await get_group_usage(principal, group, statistics, period=DAILY, now=now)
    return UsageCharts(
        hourly=chart_of(hours, "Last 24 hours", "usage-hourly"),
        daily=chart_of(days, "Last 30 days", "usage-daily"),
        bytes_saved=days.bytes_saved,
        docker_hub_pulls_saved=days.docker_hub_pulls_saved,
    )
