"""Tortoise ORM configuration, start-up and migrations."""

from __future__ import annotations

import re
from typing import Any

from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import BaseORMException
from tortoise.migrations.api import migrate as run_migrations

from app import access_version
from app.config import Settings

MODEL_MODULES = [
    "app.accounts.models",
    "app.groups.models",
    "app.instance.models",
    "app.dependency_proxy.models",
]


# How long a SQLite connection waits for another process's write lock before it
# fails with "database is locked" (Python's sqlite3 would wait 5 s implicitly).
SQLITE_BUSY_TIMEOUT_MS = 10_000

BUSY_MESSAGE = "the database is busy (another process holds a write lock too long); try again"
_BUSY_SIGNS = ("database is locked", "database table is locked", "lock timeout", "deadlock")
# SQLite's and PostgreSQL's words for a table that is not there (no migrations yet).
_MISSING_TABLE = re.compile(r'no such table|relation ".*" does not exist')


def _connection(database_url: str) -> str | dict[str, Any]:
    url = database_url
    if url.startswith("postgresql://"):
        url = "postgres://" + url.removeprefix("postgresql://")
    if not url.startswith("sqlite:"):
        return url
    # Every SQLite connection (server, CLI, migrations) gets WAL and a busy
    # timeout; Tortoise runs each extra credential as a PRAGMA, in order, so
    # the timeout is set before switching to WAL (which takes a lock itself).
    # Values in the URL's query string win.
    expanded = expand_db_url(url)
    credentials = expanded["credentials"]
    expanded["credentials"] = {
        "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
        "journal_mode": "WAL",
        **credentials,
    }
    return expanded


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": _connection(database_url)},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def init_db(settings: Settings) -> None:
    # The global fallback lets request tasks see the connections that the
    # lifespan task opened (contextvars do not cross those tasks).
    access_version.close()  # nothing kept from another database
    await Tortoise.init(config=tortoise_config(settings.database_url), _enable_global_fallback=True)


async def close_db() -> None:
    access_version.close()
    await Tortoise.close_connections()


async def migrate(settings: Settings) -> None:
    """Apply every pending migration (idempotent)."""
    await run_migrations(config=tortoise_config(settings.database_url))
    await Tortoise.close_connections()


def is_busy(error: BaseException) -> bool:
    """A lock held by another connection for longer than we wait (SQLite or PostgreSQL)."""
    text = str(error).lower()
    return isinstance(error, BaseORMException) and any(sign in text for sign in _BUSY_SIGNS)


def describe_error(error: BaseORMException) -> str:
    """One line for an operator: what went wrong, and only then what to do."""
    text = str(error)
    if is_busy(error):
        return BUSY_MESSAGE
    if _MISSING_TABLE.search(text):
        return f"database: {text} (did you run `dockyard migrate`?)"
    return f"database: {text}"


async def ping() -> None:
    await connections.get("default").execute_query("SELECT 1")


# For `tortoise makemigrations` (see `make migrations`): models only, no data.
TORTOISE_ORM = tortoise_config("sqlite://:memory:")
