"""`Group.dependencyProxyUsage`: the group's usage over time, per hour or per day.

Readable by whoever may read the group (the service decides). Points cover the
whole range, zero where nothing happened; `bytesSaved` and
`dockerHubPullsSaved` sum the range.
"""

from __future__ import annotations

from enum import Enum

import strawberry

from app import clock
from app.dependency_proxy.services.get_usage import UsagePoint, UsageReport, get_group_usage
from app.dependency_proxy.usage import DAILY, HOURLY
from app.gql.context import Info
from app.gql.scalars import BigInt, Time
from app.groups.models import Group


@strawberry.enum(name="DependencyProxyUsagePeriod")
class UsagePeriod(Enum):
    HOURLY = HOURLY
    DAILY = DAILY


@strawberry.type(description="Dockyard: a group's use of its cache in one hour or day (UTC).")
class DependencyProxyUsagePoint:
    starts_at: Time
    pulls: int = strawberry.field(description="Manifest requests.")
    hits: int = strawberry.field(description="Manifest requests served from the cache.")
    misses: int = strawberry.field(description="Manifest requests fetched from the upstream.")
    bytes_from_cache: BigInt = strawberry.field(description="Bytes served from the cache.")
    bytes_from_upstream: BigInt = strawberry.field(
        description="Bytes served while being fetched from the upstream."
    )
    upstream_requests: int = strawberry.field(
        description="HTTP requests made to upstreams for the group (token requests included)."
    )
    rate_limit_remaining: int | None = strawberry.field(
        description="The lowest `ratelimit-remaining` an upstream sent; null when none sent one."
    )

    @classmethod
    def of(cls, point: UsagePoint) -> DependencyProxyUsagePoint:
        return cls(
            starts_at=Time(point.starts_at),
            pulls=point.pulls,
            hits=point.hits,
            misses=point.misses,
            bytes_from_cache=BigInt(point.bytes_from_cache),
            bytes_from_upstream=BigInt(point.bytes_from_upstream),
            upstream_requests=point.upstream_requests,
            rate_limit_remaining=point.rate_limit_remaining,
        )


@strawberry.type(description="Dockyard: a group's usage over a range of hours or days.")
class DependencyProxyUsage:
    period: UsagePeriod
    starts_at: Time = strawberry.field(description="Start of the first point.")
    ends_at: Time = strawberry.field(description="End of the last point (exclusive).")
    nodes: list[DependencyProxyUsagePoint]
    bytes_saved: BigInt = strawberry.field(
        description="Bytes served from the cache in the range: not fetched from an upstream."
    )
    docker_hub_pulls_saved: int = strawberry.field(
        description="Manifest GETs served from the cache for images of a Docker Hub upstream: "
        "each would have counted against Docker Hub's pull limit."
    )

    @classmethod
    def of(cls, report: UsageReport) -> DependencyProxyUsage:
        return cls(
            period=UsagePeriod(report.period),
            starts_at=Time(report.starts_at),
            ends_at=Time(report.ends_at),
            nodes=[DependencyProxyUsagePoint.of(point) for point in report.points],
            bytes_saved=BigInt(report.bytes_saved),
            docker_hub_pulls_saved=report.docker_hub_pulls_saved,
        )


async def usage_of(
    info: Info,
    group: Group,
    period: UsagePeriod,
    starts_at: Time | None,
    ends_at: Time | None,
) -> DependencyProxyUsage:
    runtime = info.context.runtime
    report = await get_group_usage(
        info.context.viewer,
        group,
        runtime.statistics if runtime else None,
        period=period.value,
        now=clock.now(),
        starts_at=starts_at,
        ends_at=ends_at,
    )
    return DependencyProxyUsage.of(report)
