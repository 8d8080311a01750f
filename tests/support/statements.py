"""Every SQL statement the app sends, with its values: to count them and to ask the
database how it would run them (`EXPLAIN QUERY PLAN`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from tortoise import connections

CACHE_TABLES = ("dependency_proxy_manifests", "dependency_proxy_blobs")


@dataclass(frozen=True)
class Statement:
    sql: str
    values: tuple[Any, ...]

    @property
    def touches_cache_rows(self) -> bool:
        return any(f'"{table}"' in self.sql or f" {table}" in self.sql for table in CACHE_TABLES)


def capture_statements(monkeypatch: pytest.MonkeyPatch) -> list[Statement]:
    """Record the statements sent through the default connection's client class
    (transactions' wrappers included: they subclass it) from now on."""
    statements: list[Statement] = []
    client_class = type(connections.get("default"))
    for name in ("execute_query", "execute_query_dict", "execute_insert", "execute_many"):
        original = getattr(client_class, name)

        def counting(self: Any, query: str, *args: Any, _original: Any = original) -> Any:
            values = args[0] if args and isinstance(args[0], list | tuple) else ()
            statements.append(Statement(query, tuple(values)))
            return _original(self, query, *args)

        monkeypatch.setattr(client_class, name, counting)
    return statements


async def sqlite_plan(statement: Statement) -> list[str]:
    """SQLite's plan for the statement, one line per step (`SCAN t`, `SEARCH t USING …`)."""
    rows = await connections.get("default").execute_query_dict(
        f"EXPLAIN QUERY PLAN {statement.sql}", list(statement.values)
    )
    return [str(row["detail"]) for row in rows]


def whole_table_steps(plan: list[str]) -> list[str]:
    """Steps that read a cache table from end to end or sort its rows."""
    return [
        step
        for step in plan
        if any(step.startswith(f"SCAN {table}") for table in CACHE_TABLES)
        or "USE TEMP B-TREE FOR ORDER BY" in step
    ]
