"""On PostgreSQL: the hot queries of pages, GraphQL, /admin, clearing and cleanup use
indexes (EXPLAIN shows no sequential scan of a cache table), and the group totals the
triggers keep stay exact with many writers at once."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from tortoise import connections
from tortoise.backends.base import executor as base_executor

from app import db
from app.accounts import records as accounts
from app.accounts.principal import Principal
from app.config import load_settings
from app.dependency_proxy import cleanup, clearing
from app.dependency_proxy.cache_totals import CacheTotals, recount, totals_of
from app.dependency_proxy.cleanup import run_cleanup_once
from app.dependency_proxy.services.clear_cache import clear_cache
from app.dependency_proxy.services.group_cache import (
    get_cache_summary,
    get_cache_totals_of_groups,
    list_blobs,
    list_manifests,
)
from app.dependency_proxy.storage.local import LocalBlobStore
from app.groups import records as groups
from app.groups.models import AccessLevel
from tests.functional.test_cleanup import CleanupRuntime
from tests.support.bulk_rows import PostgresRows
from tests.support.postgres import PostgresServer, postgres_bin
from tests.support.statements import CACHE_TABLES, Statement, capture_statements

LIMIT_COST = re.compile(r"Limit  \(cost=[\d.]+\.\.([\d.]+) ")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed"),
]


@pytest.fixture
def database_url(postgres: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    yield postgres.create_database(request.node.name.replace("test_", "")[:40])


async def plan_of(statement: Statement) -> str:
    rows = await connections.get("default").execute_query_dict(
        f"EXPLAIN {statement.sql}", list(statement.values)
    )
    return "\n".join(str(row["QUERY PLAN"]) for row in rows)


async def assert_indexed(statements: list[Statement]) -> int:
    checked = 0
    for statement in statements:
        if not statement.touches_cache_rows or statement.sql.lstrip().upper().startswith(
            ("INSERT", "EXPLAIN")
        ):
            continue
        plan = await plan_of(statement)
        if any(f"Seq Scan on {table}" in plan for table in CACHE_TABLES):
            # Only where the planner knows the first rows it meets will do (a LIMIT 1
            # existence check on a group that holds most rows): it stops at once.
            top = LIMIT_COST.match(plan)
            assert top and float(top.group(1)) < 1, (statement.sql, plan)
        checked += 1
    return checked


async def test_hot_queries_use_indexes_on_postgres(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tortoise caches each model's INSERT per connection name: tests on SQLite
    # in this process left "default"'s with `?` placeholders.
    monkeypatch.setattr(base_executor, "EXECUTOR_CACHE", {})
    settings = load_settings({}, data_dir=tmp_path, database_url=database_url)
    await db.migrate(settings)
    await db.init_db(settings)
    try:
        big = await groups.create_group("big")
        small = await groups.create_group("small")
        owner = await accounts.create_user("olga", "olga@example.com", "olga-password-1")
        admin = await accounts.create_user(
            "ada", "ada@example.com", "ada-password-12", is_admin=True
        )
        await groups.add_member(big, owner, AccessLevel.OWNER)
        await groups.add_member(small, owner, AccessLevel.OWNER)
        rows = PostgresRows(database_url)
        await asyncio.to_thread(rows.insert_cache, [big.id], 20_000, 1)  # + ANALYZE
        await asyncio.to_thread(rows.insert_cache, [small.id], 2_000, 1)
        as_owner, as_admin = Principal(user=owner), Principal(user=admin)
        statements = capture_statements(monkeypatch)

        await get_cache_summary(as_owner, big, None, settings)
        first = await list_manifests(as_owner, big, first=20)
        await list_manifests(as_owner, big, first=20, after=first.end_cursor)
        await list_manifests(as_owner, big, last=20, before=first.end_cursor)
        await list_blobs(as_owner, big, first=20)
        await get_cache_totals_of_groups(as_admin, [big, small])
        assert await assert_indexed(list(statements)) >= 5

        monkeypatch.setattr(clearing, "CHUNK_ROWS_POSTGRES", 500)
        monkeypatch.setattr(cleanup, "PAUSE_SECONDS", 0)
        monkeypatch.setattr(clearing, "PAUSE_SECONDS", 0)
        statements.clear()
        result = await clear_cache(as_owner, small)
        assert (result.manifests_marked, result.blobs_marked) == (2_000, 10_000)
        assert await assert_indexed(list(statements)) >= 20

        statements.clear()
        runtime = CleanupRuntime(settings, LocalBlobStore(tmp_path))
        done = await run_cleanup_once(runtime)
        assert (done.manifests_deleted, done.blobs_deleted) == (2_000, 10_000)
        assert await assert_indexed(list(statements)) >= 20
        for group in (big, small):
            assert (await recount(group.id)).was_right
        assert await totals_of(small.id) == CacheTotals()
    finally:
        await db.close_db()


async def test_totals_stay_exact_with_concurrent_writers_on_postgres(
    database_url: str, tmp_path: Path
) -> None:
    settings = load_settings({}, data_dir=tmp_path, database_url=database_url)
    await db.migrate(settings)
    pool = await asyncpg.create_pool(database_url, min_size=8, max_size=8)
    try:
        group_ids = [
            await pool.fetchval(
                "INSERT INTO groups (path, full_path, full_path_key, name, description,"
                " visibility, created_at, updated_at)"
                " VALUES ($1, $1, $1, $1, '', 'private', now(), now()) RETURNING id",
                f"g{number}",
            )
            for number in range(3)
        ]

        async def writer(seed: int) -> None:
            chance = random.Random(seed)
            for number in range(120):
                group_id = chance.choice(group_ids)
                await pool.execute(
                    "INSERT INTO dependency_proxy_blobs (group_id, digest, size, status,"
                    " read_at, created_at, updated_at) VALUES ($1, $2, $3, 0, now(), now(), now())",
                    group_id,
                    f"sha256:{seed:032x}{number:032x}",
                    chance.randint(1, 10_000),
                )
                if number % 3 == 0:  # marking rows of several groups in one statement
                    await pool.execute(
                        "UPDATE dependency_proxy_blobs SET status = 1 WHERE id IN"
                        " (SELECT id FROM dependency_proxy_blobs WHERE status = 0"
                        " ORDER BY random() LIMIT 5 FOR UPDATE SKIP LOCKED)"
                    )
                if number % 4 == 0:  # cleanup: delete a batch across groups
                    await pool.execute(
                        "DELETE FROM dependency_proxy_blobs WHERE id IN (SELECT id FROM"
                        " dependency_proxy_blobs WHERE status = 1 ORDER BY id LIMIT 4"
                        " FOR UPDATE SKIP LOCKED)"
                    )

        await asyncio.gather(*(writer(seed) for seed in range(8)))
        for group_id in group_ids:
            stored = await pool.fetchrow(
                "SELECT blob_count, blob_bytes, blobs_leaving FROM dependency_proxy_group_totals"
                " WHERE group_id = $1",
                group_id,
            )
            counted = await pool.fetchrow(
                "SELECT COUNT(*) AS blob_count, COALESCE(SUM(size), 0) AS blob_bytes,"
                " COUNT(*) FILTER (WHERE status IN (1, 2)) AS blobs_leaving"
                " FROM dependency_proxy_blobs WHERE group_id = $1",
                group_id,
            )
            assert dict(stored) == dict(counted), group_id
    finally:
        await pool.close()
