"""Usage over time: per group and hour, counted in memory and flushed in batches.

Pulls (manifest requests), hits, misses, bytes served from the cache and from
the upstream, upstream requests and the lowest `ratelimit-remaining` the
upstream sent are added to an in-memory bucket per (group, hour) on the hot
path; the runtime's periodic statistics flush (every few seconds, and at
shutdown) writes each bucket with one `INSERT … ON CONFLICT … DO UPDATE` that
adds its counts to the stored row, so several worker processes and several
instances on one PostgreSQL database sum up, and a request never costs a
database write. Pulls per image and day are kept the same way (the admin
page's top images).

Upstream requests are counted by the upstream client for whichever group the
current task works for: the services open `on_behalf_of(...)` around a pull,
and a download's detached task inherits it (its context is a copy).

Hours are UTC; `starts_at` is Unix seconds. Retention (`usage_rollup.py`):
hours for `HOURLY_RETENTION_DAYS`, then rolled up into days kept
`DAILY_RETENTION_DAYS`; pulls per image for `IMAGE_RETENTION_DAYS`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Concatenate, Final, Literal, ParamSpec, Protocol, TypeVar

from app import clock
from app.dependency_proxy import sql

log = logging.getLogger("dockyard.usage")

HOUR = 3600
DAY = 86400
#: Hourly rows are kept this long, then rolled up into daily rows.
HOURLY_RETENTION_DAYS = 14
#: Daily rows are kept this long, then deleted.
DAILY_RETENTION_DAYS = 400
#: Pulls per image and day (the admin page's top images) are kept this long.
IMAGE_RETENTION_DAYS = 35

Period = Literal["hour", "day"]
HOURLY: Final = "hour"
DAILY: Final = "day"


@dataclass
class UsageCounts:
    pulls: int = 0
    hits: int = 0
    misses: int = 0
    docker_hub_hits: int = 0
    bytes_from_cache: int = 0
    bytes_from_upstream: int = 0
    upstream_requests: int = 0
    rate_limit_remaining: int | None = None  # the lowest seen

    def merge(self, other: UsageCounts) -> None:
        for item in COUNTERS:
            setattr(self, item, getattr(self, item) + getattr(other, item))
        self.note_remaining(other.rate_limit_remaining)

    def note_remaining(self, remaining: int | None) -> None:
        if remaining is not None and (
            self.rate_limit_remaining is None or remaining < self.rate_limit_remaining
        ):
            self.rate_limit_remaining = remaining


COUNTERS = tuple(item.name for item in fields(UsageCounts) if item.name != "rate_limit_remaining")


@dataclass
class ImageCounts:
    pulls: int = 0
    hits: int = 0


def hour_of(moment: datetime) -> int:
    return int(moment.timestamp()) // HOUR * HOUR


def day_of(seconds: int) -> int:
    return seconds // DAY * DAY


class UsageAccumulator:
    """The process's not yet flushed usage, per (group, hour) and (group, image, day)."""

    def __init__(self) -> None:
        self._hours: dict[tuple[int, int], UsageCounts] = {}
        self._images: dict[tuple[int, str, int], ImageCounts] = {}
        # Hours a flush is writing: still this process's to show until written.
        self._writing: dict[tuple[int, int], UsageCounts] = {}

    def _bucket(self, group_id: int) -> UsageCounts:
        key = (group_id, hour_of(clock.now()))
        counts = self._hours.get(key)
        if counts is None:
            counts = self._hours[key] = UsageCounts()
        return counts

    def record_pull(self, group_id: int, image: str, *, hit: bool, docker_hub: bool) -> None:
        """One manifest request; `docker_hub`: a hit Docker Hub would have counted as a pull."""
        counts = self._bucket(group_id)
        counts.pulls += 1
        if hit:
            counts.hits += 1
            counts.docker_hub_hits += int(docker_hub)
        else:
            counts.misses += 1
        key = (group_id, image, day_of(hour_of(clock.now())))
        image_counts = self._images.get(key)
        if image_counts is None:
            image_counts = self._images[key] = ImageCounts()
        image_counts.pulls += 1
        image_counts.hits += int(hit)

    def record_bytes(self, group_id: int, source: str, size: int) -> None:
        counts = self._bucket(group_id)
        if source == "cache":
            counts.bytes_from_cache += size
        else:
            counts.bytes_from_upstream += size

    def record_upstream(self, group_id: int, remaining: int | None) -> None:
        """One upstream response for the group, with its `ratelimit-remaining` if sent."""
        counts = self._bucket(group_id)
        counts.upstream_requests += 1
        counts.note_remaining(remaining)

    def pending(self, group_id: int) -> dict[int, UsageCounts]:
        """This process's unwritten hours of the group (readers add them to the rows)."""
        found: dict[int, UsageCounts] = {}
        for source in (self._writing, self._hours):
            for (group, hour), counts in source.items():
                if group == group_id:
                    found.setdefault(hour, UsageCounts()).merge(counts)
        return found

    async def flush(self) -> None:
        """Add what was counted to the stored rows; what could not be written is kept
        for the next round (each statement is retried alone, so nothing counts twice)."""
        hours, self._hours = self._hours, {}
        images, self._images = self._images, {}
        self._writing = hours  # each entry leaves it in the step its row is written
        try:
            while hours:
                (group_id, hour), counts = next(iter(hours.items()))
                await _write_hour(group_id, hour, counts)
                del hours[(group_id, hour)]
            while images:
                key, image_counts = next(iter(images.items()))
                await _write_image(key, image_counts)
                del images[key]
        except BaseException:
            self._restore(hours, images)
            raise
        finally:
            self._writing = {}

    def _restore(
        self,
        hours: dict[tuple[int, int], UsageCounts],
        images: dict[tuple[int, str, int], ImageCounts],
    ) -> None:
        for key, counts in hours.items():
            self._hours.setdefault(key, UsageCounts()).merge(counts)
        for image_key, image_counts in images.items():
            kept = self._images.setdefault(image_key, ImageCounts())
            kept.pulls += image_counts.pulls
            kept.hits += image_counts.hits


def upsert_usage_sql(source: str = "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)") -> str:
    """The statement adding counts to a group's row for a period (a flush, the rollup).

    `rate_limit_remaining` keeps the lower of the two, a NULL standing for "not sent".
    """
    columns = ", ".join(COUNTERS)
    added = ", ".join(
        f"{name} = dependency_proxy_usage.{name} + excluded.{name}" for name in COUNTERS
    )
    kept = "dependency_proxy_usage.rate_limit_remaining"
    return (
        f"INSERT INTO dependency_proxy_usage (group_id, period, starts_at, {columns},"
        f" rate_limit_remaining) {source}"
        f" ON CONFLICT (group_id, period, starts_at) DO UPDATE SET {added},"
        " rate_limit_remaining = CASE"
        f" WHEN excluded.rate_limit_remaining IS NULL THEN {kept}"
        f" WHEN {kept} IS NULL OR excluded.rate_limit_remaining < {kept}"
        f" THEN excluded.rate_limit_remaining ELSE {kept} END"
    )


_IMAGE_UPSERT = (
    "INSERT INTO dependency_proxy_image_usage (group_id, image_name, starts_at, pulls, hits)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (group_id, image_name, starts_at) DO UPDATE SET"
    " pulls = dependency_proxy_image_usage.pulls + excluded.pulls,"
    " hits = dependency_proxy_image_usage.hits + excluded.hits"
)


async def _write_hour(group_id: int, hour: int, counts: UsageCounts) -> None:
    values = [getattr(counts, name) for name in COUNTERS]
    await _upsert(upsert_usage_sql(), group_id, HOURLY, hour, *values, counts.rate_limit_remaining)


async def _write_image(key: tuple[int, str, int], counts: ImageCounts) -> None:
    group_id, image, day = key
    await _upsert(_IMAGE_UPSERT, group_id, image, day, counts.pulls, counts.hits)


async def _upsert(statement: str, *values: object) -> None:
    try:
        await sql.retry_busy(lambda: sql.execute(statement, *values), "usage flush")
    except Exception as error:
        # A group deleted since the pull: its foreign key refuses the row; drop it.
        if not _is_gone(error):
            raise


def _is_gone(error: Exception) -> bool:
    return "foreign key" in str(error).lower()


# -- upstream requests, for the group a task works for ----------------------

_on_behalf_of: ContextVar[tuple[UsageAccumulator, int] | None] = ContextVar(
    "dockyard_usage_group", default=None
)


@contextmanager
def on_behalf_of(usage: UsageAccumulator, group_id: int) -> Iterator[None]:
    """Count the upstream responses of the enclosed work (and of tasks it starts) for the group."""
    token = _on_behalf_of.set((usage, group_id))
    try:
        yield
    finally:
        _on_behalf_of.reset(token)


def observe_upstream_response(remaining: int | None) -> None:
    """Called by the upstream client for every response it receives."""
    current = _on_behalf_of.get()
    if current is not None:
        usage, group_id = current
        usage.record_upstream(group_id, remaining)


class _Usage(Protocol):
    @property
    def statistics(self) -> _HasUsage: ...


class _HasUsage(Protocol):
    @property
    def usage(self) -> UsageAccumulator: ...


class _Group(Protocol):
    @property
    def id(self) -> int: ...


class _Pull(Protocol):
    @property
    def group(self) -> _Group: ...


CacheT = TypeVar("CacheT", bound=_Usage)
PullT = TypeVar("PullT", bound=_Pull)
P = ParamSpec("P")
R = TypeVar("R")


def counted_for_group(
    service: Callable[Concatenate[CacheT, PullT, P], Awaitable[R]],
) -> Callable[Concatenate[CacheT, PullT, P], Awaitable[R]]:
    """A pull service `(cache, pull, …)` whose upstream requests count for `pull.group`."""

    @functools.wraps(service)
    async def counted(cache: CacheT, pull: PullT, *args: P.args, **kwargs: P.kwargs) -> R:
        with on_behalf_of(cache.statistics.usage, pull.group.id):
            return await service(cache, pull, *args, **kwargs)

    return counted
