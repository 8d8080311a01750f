"""The long-lived objects one Dockyard process shares between requests.

Built in the lifespan of `app.asgi`, handed to services explicitly (never a
global), closed on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app import metrics
from app.config import Settings
from app.dependency_proxy.downloads import BlobDownloads
from app.dependency_proxy.statistics import CacheStatistics
from app.dependency_proxy.storage import LocalBlobStore
from app.dependency_proxy.upstream import UpstreamClient

log = logging.getLogger("dockyard.runtime")

STATISTICS_FLUSH_SECONDS = 5.0


class RecentGrants:
    """(group id, blob digest) pairs the upstream recently let a group read,
    bounded in size and age: a crowd of one group's clients joining a download
    is checked once, not once per client."""

    def __init__(self, max_entries: int = 10_000, max_age: float = 600.0) -> None:
        self._entries: OrderedDict[tuple[int, str], float] = OrderedDict()
        self._max_entries = max_entries
        self._max_age = max_age

    def add(self, key: tuple[int, str]) -> None:
        self._entries[key] = time.monotonic() + self._max_age
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def holds(self, key: tuple[int, str]) -> bool:
        expiry = self._entries.get(key)
        return expiry is not None and expiry > time.monotonic()


@dataclass
class Runtime:
    settings: Settings
    upstream: UpstreamClient
    store: LocalBlobStore
    downloads: BlobDownloads
    statistics: CacheStatistics = field(default_factory=CacheStatistics)
    # Revalidations of one tag in flight, shared by concurrent requests.
    manifest_flights: dict[Any, asyncio.Future[Any]] = field(default_factory=dict)
    blob_grants: RecentGrants = field(default_factory=RecentGrants)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        store = LocalBlobStore(settings.data_dir)
        return cls(
            settings=settings,
            upstream=UpstreamClient(
                settings.upstream_url,
                connect_timeout=settings.upstream_connect_timeout,
                read_timeout=settings.upstream_read_timeout,
            ),
            store=store,
            downloads=BlobDownloads(store, max_size=settings.blob_max_bytes),
        )

    async def start(self) -> None:
        metrics.runtime_collector.runtime = self
        await self.downloads.remove_stale_spools()
        self.every(STATISTICS_FLUSH_SECONDS, self.statistics.flush, "statistics flush")

    def background(self, coroutine: Awaitable[None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coroutine, name=name))  # type: ignore[arg-type]

    def every(self, seconds: float, work: Callable[[], Awaitable[None]], name: str) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await work()
                except Exception:  # keep the loop alive; the next round retries
                    log.exception("%s failed", name)

        self.background(loop(), name)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.statistics.flush()
        await self.downloads.aclose()
        await self.upstream.aclose()
