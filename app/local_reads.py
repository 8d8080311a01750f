"""Small reads on the event loop, through a read-only SQLite connection of this process.

The hot pull path reads one small row per request (the access version, a
cached manifest). Through the ORM each read is a hop to aiosqlite's thread
plus query building and model construction; on SQLite the same indexed read
on a connection of our own takes microseconds, so it is done right here. The
connection opens the file read-only (it can never write nor create it), WAL
readers never wait for writers, and a busy answer (a checkpoint's brief
exclusive moment) is reported as "not here", so callers use the ORM instead.
PostgreSQL and in-memory databases always take the ORM's way.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tortoise import connections

# The read connection per SQLite file (tests open many databases in one process).
_readers: dict[str, sqlite3.Connection] = {}


class Unavailable(Exception):
    """No local read here: not SQLite, or SQLite said busy. Use the ORM."""


def _sqlite_file() -> str | None:
    client = connections.get("default")
    if client.capabilities.dialect != "sqlite":
        return None
    filename: str = getattr(client, "filename", "")
    return None if filename in ("", ":memory:") else filename


def fetch_one(query: str, parameters: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """The first row of `query` (SQLite's `?` placeholders), or None; raises Unavailable."""
    filename = _sqlite_file()
    if filename is None:
        raise Unavailable
    try:
        reader = _readers.get(filename)
        if reader is None:
            reader = sqlite3.connect(
                f"file:{filename}?mode=ro", uri=True, timeout=0, check_same_thread=False
            )
            _readers[filename] = reader
        row: tuple[Any, ...] | None = reader.execute(query, parameters).fetchone()
    except sqlite3.OperationalError:
        raise Unavailable from None
    return row


def close() -> None:
    """Close the read connections (when the ORM's connections close)."""
    while _readers:
        _, reader = _readers.popitem()
        reader.close()
