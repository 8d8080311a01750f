"""The long-lived objects one Dockyard process shares between requests.

Built in the lifespan of `app.asgi`, handed to services explicitly (never a
global), closed on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app import metrics
from app.config import Settings
from app.dependency_proxy.downloads import BlobDownloads
from app.dependency_proxy.grants import BlobGrants
from app.dependency_proxy.statistics import CacheStatistics
from app.dependency_proxy.storage import LocalBlobStore
from app.dependency_proxy.upstream import UpstreamClient

log = logging.getLogger("dockyard.runtime")

STATISTICS_FLUSH_SECONDS = 5.0


@dataclass
class Runtime:
    settings: Settings
    upstream: UpstreamClient
    store: LocalBlobStore
    downloads: BlobDownloads
    statistics: CacheStatistics = field(default_factory=CacheStatistics)
    # Revalidations of one tag in flight, shared by concurrent requests of one
    # group with the same upstream credentials (see get_manifest).
    manifest_flights: dict[Any, asyncio.Future[Any]] = field(default_factory=dict)
    # Which group may read which shared blob bytes (the rule is in grants.py).
    blob_grants: BlobGrants = field(default_factory=BlobGrants)
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
