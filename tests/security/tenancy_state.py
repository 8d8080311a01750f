"""Everything the database holds, to prove a refused request changed nothing."""

from __future__ import annotations

from typing import Any

from tortoise import connections


def _stable(row: dict[str, Any]) -> str:
    # `last_*_at` columns are activity stamps a request may refresh, not state it sets.
    kept = sorted(
        (k, v) for k, v in row.items() if not (k.startswith("last_") and k.endswith("_at"))
    )
    return repr(kept)


async def database_state() -> dict[str, list[str]]:
    """Every row of every table (SQLite), in a comparable form."""
    connection = connections.get("default")
    tables = await connection.execute_query_dict(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    )
    state = {}
    for table in (row["name"] for row in tables):
        rows = await connection.execute_query_dict(f'SELECT * FROM "{table}"')
        state[table] = sorted(_stable(row) for row in rows)
    return state
