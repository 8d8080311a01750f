"""Bounded retention of usage over time, run by the cleanup worker.

Hours older than `HOURLY_RETENTION_DAYS` move into their day's row, in one
step that cannot count them twice: on PostgreSQL one statement deletes the
hours and adds them to the days (`WITH moved AS (DELETE … RETURNING …)`), so
a second instance running the same rollup finds them gone; on SQLite (one
writer at a time) the insert and the delete share one transaction. Days older
than `DAILY_RETENTION_DAYS` and pulls per image older than
`IMAGE_RETENTION_DAYS` are deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.transactions import in_transaction

from app.dependency_proxy import sql
from app.dependency_proxy.usage import (
    COUNTERS,
    DAILY,
    DAILY_RETENTION_DAYS,
    DAY,
    HOURLY,
    HOURLY_RETENTION_DAYS,
    IMAGE_RETENTION_DAYS,
    day_of,
    upsert_usage_sql,
)


@dataclass(frozen=True)
class UsageRollup:
    hours_rolled_up: int = 0
    days_deleted: int = 0
    image_days_deleted: int = 0


def _summed(rows: str) -> str:
    sums = ", ".join(f"SUM({name})" for name in COUNTERS)
    return (
        f"SELECT group_id, '{DAILY}', starts_at - starts_at % {DAY}, {sums},"
        f" MIN(rate_limit_remaining) FROM {rows}"
        f" GROUP BY group_id, starts_at - starts_at % {DAY}"
        # SQLite's parser needs a WHERE before ON CONFLICT after a SELECT.
        " HAVING TRUE"
    )


async def _roll_up_hours(cutoff: int) -> int:
    if sql.is_sqlite():
        async with in_transaction():
            hours = f"dependency_proxy_usage WHERE period = '{HOURLY}' AND starts_at < $1"
            await sql.execute(upsert_usage_sql(_summed(hours)), cutoff)
            return await sql.changed(f"DELETE FROM {hours}", cutoff)
    columns = ", ".join(COUNTERS)
    rows = await sql.fetch(
        "WITH moved AS (DELETE FROM dependency_proxy_usage"
        f" WHERE period = '{HOURLY}' AND starts_at < $1"
        f" RETURNING group_id, starts_at, {columns}, rate_limit_remaining),"
        f" added AS ({upsert_usage_sql(_summed('moved'))} RETURNING 1)"
        " SELECT (SELECT COUNT(*) FROM moved) AS moved, (SELECT COUNT(*) FROM added) AS added",
        cutoff,
    )
    return int(rows[0]["moved"])


async def roll_up_usage(now: datetime) -> UsageRollup:
    """Move old hours into days, delete what is past retention (idempotent)."""
    today = day_of(int(now.timestamp()))
    hours = await sql.retry_busy(
        lambda: _roll_up_hours(today - HOURLY_RETENTION_DAYS * DAY), "usage rollup"
    )
    days = await sql.retry_busy(
        lambda: sql.changed(
            f"DELETE FROM dependency_proxy_usage WHERE period = '{DAILY}' AND starts_at < $1",
            today - DAILY_RETENTION_DAYS * DAY,
        ),
        "usage retention",
    )
    images = await sql.retry_busy(
        lambda: sql.changed(
            "DELETE FROM dependency_proxy_image_usage WHERE starts_at < $1",
            today - IMAGE_RETENTION_DAYS * DAY,
        ),
        "image usage retention",
    )
    return UsageRollup(hours, days, images)
