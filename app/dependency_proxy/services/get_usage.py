"""A group's usage over time (the page's charts, GraphQL's `dependencyProxyUsage`).

Whoever may read the group (Guest or more) may see its usage; no one else, and
only that group's rows are read. Points cover the whole range, one per hour or
day, zero where nothing happened. Daily points add up the day rows (hours
rolled up by the cleanup worker) and the hours not rolled up yet; this
process's unflushed counts are added to both, as the totals on the page are.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime

from app.accounts.principal import Principal
from app.dependency_proxy import sql
from app.dependency_proxy.statistics import CacheStatistics
from app.dependency_proxy.usage import (
    COUNTERS,
    DAILY,
    DAY,
    HOUR,
    HOURLY,
    Period,
    UsageCounts,
    day_of,
)
from app.errors import InvalidInput
from app.groups.models import Group
from app.groups.policy import require_read

#: The longest range one request may ask for, in points (a month of hours, 400 days).
MAX_POINTS: dict[Period, int] = {HOURLY: 31 * 24, DAILY: 400}
#: What a range defaults to: the last 24 hours, the last 30 days (current one included).
DEFAULT_POINTS: dict[Period, int] = {HOURLY: 24, DAILY: 30}


@dataclass(frozen=True)
class UsagePoint:
    starts_at: datetime
    pulls: int
    hits: int
    misses: int
    docker_hub_hits: int
    bytes_from_cache: int
    bytes_from_upstream: int
    upstream_requests: int
    rate_limit_remaining: int | None


@dataclass(frozen=True)
class UsageReport:
    period: Period
    starts_at: datetime
    ends_at: datetime  # exclusive
    points: tuple[UsagePoint, ...]

    @property
    def bytes_saved(self) -> int:
        """Bytes served from the cache: each would have been fetched from the upstream."""
        return sum(point.bytes_from_cache for point in self.points)

    @property
    def docker_hub_pulls_saved(self) -> int:
        """Manifest GETs served from the cache for images of a Docker Hub upstream."""
        return sum(point.docker_hub_hits for point in self.points)

    @property
    def pulls(self) -> int:
        return sum(point.pulls for point in self.points)


def usage_range(
    period: Period, now: datetime, starts_at: datetime | None, ends_at: datetime | None
) -> tuple[int, int]:
    """[start, end) in Unix seconds, whole periods; InvalidInput for a range that makes no sense."""
    step = HOUR if period == HOURLY else DAY
    if ends_at is None:
        end = int(now.timestamp()) // step * step + step
    else:
        end = -(-int(ends_at.timestamp()) // step) * step  # exclusive, rounded up
    start = (
        end - DEFAULT_POINTS[period] * step
        if starts_at is None
        else int(starts_at.timestamp()) // step * step
    )
    if start >= end:
        raise InvalidInput("`from` must be before `to`")
    if (end - start) // step > MAX_POINTS[period]:
        unit = "hours" if period == HOURLY else "days"
        raise InvalidInput(f"a range may span at most {MAX_POINTS[period]} {unit}")
    return start, end


async def _stored(group_id: int, period: Period, start: int, end: int) -> dict[int, UsageCounts]:
    sums = ", ".join(f"SUM({name}) AS {name}" for name in COUNTERS)
    bucket = "starts_at" if period == HOURLY else f"starts_at - starts_at % {DAY}"
    # Daily points read day rows and the hours not rolled up yet alike.
    periods = f"'{HOURLY}'" if period == HOURLY else f"'{HOURLY}', '{DAILY}'"
    rows = await sql.fetch(
        f"SELECT {bucket} AS bucket, {sums}, MIN(rate_limit_remaining) AS remaining"
        f" FROM dependency_proxy_usage WHERE group_id = $1 AND period IN ({periods})"
        f" AND starts_at >= $2 AND starts_at < $3 GROUP BY {bucket}",
        group_id,
        start,
        end,
    )
    found: dict[int, UsageCounts] = {}
    for row in rows:
        counts = UsageCounts(**{name: int(row[name] or 0) for name in COUNTERS})
        counts.note_remaining(row["remaining"])
        found[int(row["bucket"])] = counts
    return found


async def get_group_usage(
    principal: Principal,
    group: Group,
    statistics: CacheStatistics | None,
    *,
    period: Period,
    now: datetime,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> UsageReport:
    """Guest or more: the group's usage per hour or day over [starts_at, ends_at)."""
    await require_read(principal, group)
    start, end = usage_range(period, now, starts_at, ends_at)
    found = await _stored(group.id, period, start, end)
    if statistics is not None:
        for hour, counts in statistics.usage.pending(group.id).items():
            bucket = hour if period == HOURLY else day_of(hour)
            if start <= bucket < end:
                found.setdefault(bucket, UsageCounts()).merge(counts)
    step = HOUR if period == HOURLY else DAY
    points = tuple(_point(moment, found.get(moment)) for moment in range(start, end, step))
    return UsageReport(
        period=period,
        starts_at=datetime.fromtimestamp(start, UTC),
        ends_at=datetime.fromtimestamp(end, UTC),
        points=points,
    )


def _point(moment: int, counts: UsageCounts | None) -> UsagePoint:
    counts = counts or UsageCounts()
    values = {item.name: getattr(counts, item.name) for item in fields(UsageCounts)}
    return UsagePoint(starts_at=datetime.fromtimestamp(moment, UTC), **values)
