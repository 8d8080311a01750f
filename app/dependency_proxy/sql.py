"""Hand-written SQL for the cache's set-based work (cleanup, clearing, totals).

The ORM cannot say `UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP
LOCKED) RETURNING …`, the one statement that claims a batch safely on both
databases. Queries here are written with PostgreSQL's `$1` placeholders and
run on SQLite as `?1`; values are always bound, never formatted in.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import OperationalError

log = logging.getLogger("dockyard.sql")

T = TypeVar("T")
_PLACEHOLDER = re.compile(r"\$(\d+)")
# A writer that finds the database locked waits this long in all before giving up.
BUSY_RETRIES = 8
BUSY_FIRST_WAIT = 0.05


def client() -> BaseDBAsyncClient:
    """The current connection (the transaction's, inside `in_transaction`)."""
    return connections.get("default")


def is_sqlite(db: BaseDBAsyncClient | None = None) -> bool:
    return (db or client()).capabilities.dialect == "sqlite"


def _dialect_sql(db: BaseDBAsyncClient, sql: str) -> str:
    return _PLACEHOLDER.sub(r"?\1", sql) if is_sqlite(db) else sql


async def fetch(sql: str, *values: Any) -> list[dict[str, Any]]:
    db = client()
    return list(await db.execute_query_dict(_dialect_sql(db, sql), list(values)))


async def execute(sql: str, *values: Any) -> None:
    db = client()
    await db.execute_query(_dialect_sql(db, sql), list(values))


async def changed(sql: str, *values: Any) -> int:
    """Run an UPDATE or DELETE; the number of rows of its table it changed.

    Counted from `RETURNING`: tortoise's SQLite client reports the
    connection's total changes, which include what the totals triggers wrote.
    """
    return len(await fetch(f"{sql} RETURNING 1", *values))


def ids_in(subquery: str) -> str:
    """`id IN (subquery)` for a batch chosen by a LIMITed subquery.

    On PostgreSQL as `id = ANY(ARRAY(subquery))`: the batch is chosen once, then
    its rows are found by primary key. With `IN`, the planner may join the batch
    against a sequential scan of the whole table when its statistics are stale
    (right after a clear marked many rows).
    """
    return f"id IN ({subquery})" if is_sqlite() else f"id = ANY(ARRAY({subquery}))"


def in_list(values: Sequence[Any], start: int) -> str:
    """`$start, $start+1, …` for an IN list of `values` bound after `start - 1` others."""
    return ", ".join(f"${number}" for number in range(start, start + len(values)))


async def pause_after(started: float, longest: float) -> None:
    """Pause as long as the work since `started` (a `time.monotonic()`) held the
    database, at most `longest` seconds: every other writer gets in between two
    pieces of bulk work, at little cost to short ones."""
    await asyncio.sleep(min(longest, max(0.0, time.monotonic() - started)))


def is_busy(error: BaseException) -> bool:
    """SQLite's "database is locked" (another process holds the write lock)."""
    text = str(error).lower()
    return isinstance(error, OperationalError | sqlite3.OperationalError) and (
        "database is locked" in text or "database is busy" in text
    )


async def retry_busy(work: Callable[[], Awaitable[T]], what: str) -> T:
    """Run `work`, again after a short wait when SQLite says another writer holds the lock.

    Every unit of work retried here is one short statement or transaction,
    so running it again is safe.
    """
    wait = BUSY_FIRST_WAIT
    for attempt in range(BUSY_RETRIES):
        try:
            return await work()
        except Exception as error:
            if not is_busy(error) or attempt == BUSY_RETRIES - 1:
                raise
            log.info("%s: database busy, retrying in %.2f s", what, wait)
            await asyncio.sleep(wait)
            wait *= 2
    raise AssertionError("unreachable")
