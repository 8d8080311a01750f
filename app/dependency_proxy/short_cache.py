"""Short-lived answers kept in this process: tag lists and upstream 404s.

Both are keyed by everything that decides the upstream's answer *and* by the
asking group: `(group id, upstream credentials fingerprint, ...)`. One group's
answer is never served to another group, nor to the same group after its
credentials changed (the fingerprint changes with them). An entry is fresh for
`ttl` seconds; a stale one stays (bounded in number, oldest use dropped first)
so that a failing upstream can still be answered from it. Concurrent fetches of
one key share one upstream request (`fetch_once`).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from app import clock

V = TypeVar("V")

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Entry(Generic[V]):
    value: V
    stored_at: datetime  # wall clock, comparable with database times (a cache clear)
    fresh: bool


class ShortCache(Generic[V]):
    def __init__(self, ttl: float, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self._entries: OrderedDict[Hashable, tuple[V, datetime, float]] = OrderedDict()
        self._max_entries = max_entries
        self._flights: dict[Hashable, asyncio.Future[V]] = {}

    def get(self, key: Hashable) -> Entry[V] | None:
        found = self._entries.get(key)
        if found is None:
            return None
        value, stored_at, expires = found
        self._entries.move_to_end(key)
        return Entry(value, stored_at, fresh=time.monotonic() < expires)

    def put(self, key: Hashable, value: V) -> None:
        self._entries[key] = (value, clock.now(), time.monotonic() + self.ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def fetch_once(self, key: Hashable, fetch: Callable[[], Awaitable[V]]) -> V:
        """`fetch()` and store its value; concurrent callers with the same key share
        one call (and its failure)."""
        flight = self._flights.get(key)
        if flight is None:

            async def run() -> V:
                value = await fetch()
                self.put(key, value)
                return value

            flight = asyncio.ensure_future(run())
            self._flights[key] = flight
            flight.add_done_callback(lambda _: self._flights.pop(key, None))
        # shield: one client going away must not cancel the others' request.
        return await asyncio.shield(flight)

    def drop(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def drop_where(self, matches: Callable[[Hashable], bool]) -> None:
        for key in [key for key in self._entries if matches(key)]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
