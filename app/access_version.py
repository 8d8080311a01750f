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
read on the event loop (`app/local_reads.py`: microseconds, where a hop to
aiosqlite's thread costs a hundred or more); on PostgreSQL it is one indexed
round trip.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any, Generic, TypeVar

from tortoise import connections

from app import local_reads

TABLE = "access_versions"
_QUERY = f"SELECT version FROM {TABLE} WHERE id = 1"

K = TypeVar("K")
V = TypeVar("V")

# Every cache, emptied when the database connections close: another database
# (a test's, or after a restore) has its own rows and its own count.
_caches: weakref.WeakSet[VersionedCache[Any, Any]] = weakref.WeakSet()


async def current() -> int:
    """The access version now (read from the database, never remembered)."""
    try:
        row = local_reads.fetch_one(_QUERY)
    except local_reads.Unavailable:
        rows = await connections.get("default").execute_query_dict(_QUERY)
        return int(rows[0]["version"]) if rows else 0
    return int(row[0]) if row else 0


def close() -> None:
    """Empty every cache and close the local reads (when the ORM's connections close)."""
    for cache in list(_caches):
        cache.clear()
    local_reads.close()


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
