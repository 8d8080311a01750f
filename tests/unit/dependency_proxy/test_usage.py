"""Usage over time (`usage.py`, `usage_rollup.py`, `services/get_usage.py`) on SQLite and
a real PostgreSQL: two processes' flushes sum, the lowest rate-limit headroom wins,
hours roll up into days exactly once, retention drops what is too old, and the report
shows one group's rows only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tortoise.backends.base import executor as base_executor

from app import clock, db
from app.accounts.principal import Principal
from app.config import Settings, load_settings
from app.dependency_proxy.models import GroupUsage, ImageUsage
from app.dependency_proxy.services.get_usage import get_group_usage
from app.dependency_proxy.statistics import CacheStatistics
from app.dependency_proxy.usage import (
    DAILY,
    DAILY_RETENTION_DAYS,
    HOURLY,
    HOURLY_RETENTION_DAYS,
    IMAGE_RETENTION_DAYS,
    UsageAccumulator,
    UsageCounts,
    observe_upstream_response,
    on_behalf_of,
)
from app.dependency_proxy.usage_rollup import UsageRollup, roll_up_usage
from app.errors import InvalidInput
from app.groups import records as groups
from tests.support.postgres import PostgresServer, postgres_bin

NOON = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
OPERATOR = Principal.operator()


@pytest.fixture(params=["sqlite", "postgres"])
async def usage_db(
    request: pytest.FixtureRequest,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        await db.init_db(settings)
    else:
        if postgres_bin() is None:
            pytest.skip("PostgreSQL is not installed")
        server: PostgresServer = request.getfixturevalue("postgres")
        # Tortoise caches each model's INSERT per connection name (SQLite's `?`).
        monkeypatch.setattr(base_executor, "EXECUTOR_CACHE", {})
        url = server.create_database(request.node.name.split("[")[0].removeprefix("test_")[:30])
        settings = load_settings({}, data_dir=tmp_path, database_url=url)
        await db.migrate(settings)
        await db.init_db(settings)
    clock.set_clock(lambda: NOON)
    try:
        yield request.param
    finally:
        await db.close_db()


def at(moment: datetime) -> None:
    clock.set_clock(lambda: moment)


def counts_of(usage: UsageAccumulator, group_id: int, pulls: int, remaining: int | None) -> None:
    for number in range(pulls):
        usage.record_pull(group_id, "alpine", hit=number % 2 == 0, docker_hub=True)
        usage.record_bytes(group_id, "cache", 100)
    usage.record_bytes(group_id, "upstream", 7)
    with on_behalf_of(usage, group_id):
        observe_upstream_response(remaining)


async def test_two_flushers_sum_and_keep_the_lowest_headroom(usage_db: str) -> None:
    acme = await groups.create_group("acme")
    first, second = UsageAccumulator(), UsageAccumulator()
    counts_of(first, acme.id, 3, 90)
    counts_of(second, acme.id, 2, 40)
    counts_of(second, acme.id, 0, None)  # an upstream that sends no rate limit
    await asyncio.gather(first.flush(), second.flush())
    counts_of(first, acme.id, 1, 60)
    await first.flush()

    row = await GroupUsage.get(group_id=acme.id, period=HOURLY)
    assert row.starts_at == int(datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp())
    assert (row.pulls, row.hits, row.misses, row.docker_hub_hits) == (6, 4, 2, 4)
    assert (row.bytes_from_cache, row.bytes_from_upstream) == (600, 28)
    assert (row.upstream_requests, row.rate_limit_remaining) == (4, 40)
    image = await ImageUsage.get(group_id=acme.id, image_name="alpine")
    assert (image.pulls, image.hits) == (6, 4)
    assert first.pending(acme.id) == {} and second.pending(acme.id) == {}


async def test_upstream_responses_count_only_inside_a_group_scope(usage_db: str) -> None:
    acme = await groups.create_group("acme")
    usage = UsageAccumulator()
    observe_upstream_response(5)  # no group: not counted anywhere
    with on_behalf_of(usage, acme.id):
        await asyncio.create_task(_observe_later())  # a download's detached task
    assert [counts.upstream_requests for counts in usage.pending(acme.id).values()] == [1]


async def _observe_later() -> None:
    observe_upstream_response(3)


async def test_hours_roll_up_into_days_once_and_old_rows_go(usage_db: str) -> None:
    acme, other = await groups.create_group("acme"), await groups.create_group("other")
    usage = UsageAccumulator()
    old = NOON - timedelta(days=HOURLY_RETENTION_DAYS + 2)
    for moment, group, remaining in (
        (old.replace(hour=3), acme.id, 50),
        (old.replace(hour=21), acme.id, 20),
        (old.replace(hour=21), other.id, None),
        (NOON - timedelta(hours=2), acme.id, 10),  # recent: stays an hour
    ):
        at(moment)
        counts_of(usage, group, 2, remaining)
    clock.set_clock(lambda: NOON - timedelta(days=DAILY_RETENTION_DAYS + 1))
    counts_of(usage, acme.id, 1, None)  # past every retention
    clock.set_clock(lambda: NOON - timedelta(days=IMAGE_RETENTION_DAYS + 1))
    counts_of(usage, other.id, 1, None)
    await usage.flush()

    first = await roll_up_usage(NOON)
    again = await roll_up_usage(NOON)  # another instance's cleanup, later: nothing twice

    # acme's two old hours, other's, and the two older still (one's day is past retention)
    assert first.hours_rolled_up == 5 and first.days_deleted == 1
    assert first.image_days_deleted == 2  # acme's 401-day-old and other's 36-day-old
    assert again == UsageRollup()
    day = await GroupUsage.get(group_id=acme.id, period=DAILY)
    assert day.starts_at == int(old.replace(hour=0, minute=0).timestamp())
    assert (day.pulls, day.bytes_from_cache, day.upstream_requests) == (4, 400, 2)
    assert day.rate_limit_remaining == 20
    other_day = await GroupUsage.get(group_id=other.id, period=DAILY, starts_at=day.starts_at)
    assert (other_day.pulls, other_day.rate_limit_remaining) == (2, None)
    hours = await GroupUsage.filter(group_id=acme.id, period=HOURLY)
    assert [row.pulls for row in hours] == [2]


async def test_the_report_fills_every_period_and_reads_one_group(usage_db: str) -> None:
    acme, other = await groups.create_group("acme"), await groups.create_group("other")
    usage = UsageAccumulator()
    clock.set_clock(lambda: NOON - timedelta(hours=3))
    counts_of(usage, acme.id, 4, 30)
    counts_of(usage, other.id, 9, 1)
    clock.set_clock(lambda: NOON - timedelta(days=HOURLY_RETENTION_DAYS + 1))
    counts_of(usage, acme.id, 2, None)
    await usage.flush()
    await roll_up_usage(NOON)
    clock.set_clock(lambda: NOON)
    counts_of(usage, acme.id, 1, None)  # not flushed yet: counted from this process

    statistics = CacheStatistics()
    statistics.usage = usage
    hourly = await get_group_usage(
        OPERATOR,
        acme,
        statistics,
        period=HOURLY,
        now=NOON,
    )
    assert len(hourly.points) == 24
    assert hourly.points[-1].starts_at == datetime(2026, 11, 20, 12, tzinfo=UTC)
    assert [point.pulls for point in hourly.points if point.pulls] == [4, 1]
    assert hourly.points[-4].rate_limit_remaining == 30
    assert hourly.bytes_saved == 500 and hourly.docker_hub_pulls_saved == 3

    daily = await get_group_usage(OPERATOR, acme, None, period=DAILY, now=NOON)
    assert len(daily.points) == 30
    assert [point.pulls for point in daily.points if point.pulls] == [2, 4]
    assert daily.pulls == 6  # other's 9 are never counted

    with pytest.raises(InvalidInput):
        await get_group_usage(
            OPERATOR,
            acme,
            None,
            period=HOURLY,
            now=NOON,
            starts_at=NOON,
            ends_at=NOON - timedelta(hours=2),
        )
    with pytest.raises(InvalidInput):
        await get_group_usage(
            OPERATOR, acme, None, period=HOURLY, now=NOON, starts_at=NOON - timedelta(days=40)
        )


async def test_a_reader_during_a_flush_sees_each_count_exactly_once(
    usage_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.dependency_proxy import usage as usage_module

    acme = await groups.create_group("acme")
    usage = UsageAccumulator()
    counts_of(usage, acme.id, 3, None)
    seen: list[int] = []
    write = usage_module._write_hour

    async def observed(group_id: int, hour: int, counts: UsageCounts) -> None:
        seen.append(sum(c.pulls for c in usage.pending(acme.id).values()))  # before the row
        await write(group_id, hour, counts)

    monkeypatch.setattr(usage_module, "_write_hour", observed)
    await usage.flush()

    assert seen == [3]
    assert usage.pending(acme.id) == {}  # written: the row has them now
    assert (await GroupUsage.get(group_id=acme.id)).pulls == 3
