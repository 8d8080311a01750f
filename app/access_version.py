"""The access version: one counter in the database that every change of who may do what moves.

Triggers (migration 0005) add one to `access_versions.version` in the same
transaction as any write to users, tokens, groups, memberships, group
settings and instance settings, whoever makes it (a request in any worker,
the CLI, another instance on the same PostgreSQL). A process may therefore
keep what it derived from those rows (a principal, a pull authorization) as
long as the counter has not moved: each request reads the counter once more,
and a revocation, a block or a removed membership commits together with a new
value, so the very next request sees it and looks everything up again. No
entry is ever trusted because it is young: there is no TTL.

Reading the counter must cost less than the lookups it saves. On SQLite it is
read through a read-only `sqlite3` connection of this process's own, on the
event loop: a one-row read in WAL mode takes microseconds, where a hop to
aiosqlite's thread takes a hundred or more; it never waits for a lock (WAL
readers do not) and falls back to the ORM's connection if SQLite says busy.
On PostgreSQL it is one indexed round trip.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections import OrderedDict
from typing import Any, Generic, TypeVar

from tortoise import connections

TABLE = "access_versions"
_QUERY = f"SELECT version FROM {TABLE} WHERE id = 1"

K = TypeVar("K")
V = TypeVar("V")

# The process's read-only connection per SQLite file (tests open many databases).
_readers: dict[str, sqlite3.Connection] = {}
# Every cache, emptied when the database connections close: another database
# (a test's, or after a restore) has its own rows and its own count.
_caches: weakref.WeakSet[VersionedCache[Any, Any]] = weakref.WeakSet()


def _sqlite_file() -> str | None:
    client = connections.get("default")
    if client.capabilities.dialect != "sqlite":
        return None
    filename: str = getattr(client, "filename", "")
    return None if filename in ("", ":memory:") else filename


def _read_sqlite(filename: str) -> int | None:
    try:
        reader = _readers.get(filename)
        if reader is None:
            # uri mode=ro: this connection can never write, nor create the file.
            reader = sqlite3.connect(
                f"file:{filename}?mode=ro", uri=True, timeout=0, check_same_thread=False
            )
            _readers[filename] = reader
        row = reader.execute(_QUERY).fetchone()
    except sqlite3.OperationalError:
        return None  # busy (a checkpoint's brief exclusive moment): ask the ORM instead
    return int(row[0]) if row else 0


async def current() -> int:
    """The access version now (read from the database, never remembered)."""
    filename = _sqlite_file()
    if filename is not None:
        version = _read_sqlite(filename)
        if version is not None:
            return version
    rows = await connections.get("default").execute_query_dict(_QUERY)
    return int(rows[0]["version"]) if rows else 0


def close() -> None:
    """Close the read connections and empty every cache (when the ORM's connections close)."""
    for cache in list(_caches):
        cache.clear()
    while _readers:
        _, reader = _readers.popitem()
        reader.close()


class VersionedCache(Generic[K, V]):
    """Values derived from access rows, each valid only at the version it was made at.

    Bounded: the least recently used entries go first when `size` is exceeded.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._entries: OrderedDict[K, tuple[int, V]] = OrderedDict()
        _caches.add(self)

    def get(self, key: K, version: int) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] != version:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: K, value: V, version: int) -> None:
        """Store `value`, made from rows read after `version` was read."""
        self._entries[key] = (version, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
