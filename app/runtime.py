"""The process's lifecycle: what the lifespan of `app.asgi` starts and stops.

It owns no domain state: the pull-through cache (`app.dependency_proxy.cache`)
is built here from the settings and handed to the surfaces through
`app.state.cache`; this object runs the background loops (statistics flush,
cleanup, sweeps) and closes everything on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from app import metrics
from app.config import Settings
from app.dependency_proxy.cache import PullThroughCache
from app.dependency_proxy.downloads import BlobDownloads
from app.dependency_proxy.statistics import CacheStatistics
from app.dependency_proxy.upstream import UpstreamClient

log = logging.getLogger("dockyard.runtime")

STATISTICS_FLUSH_SECONDS = 5.0


@dataclass
class Runtime:
    settings: Settings
    cache: PullThroughCache
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        return cls(settings=settings, cache=PullThroughCache.from_settings(settings))

    # Read by pages, GraphQL and the metrics collector (figures, not behaviour).
    @property
    def statistics(self) -> CacheStatistics:
        return self.cache.statistics

    @property
    def upstream(self) -> UpstreamClient:
        return self.cache.upstream

    @property
    def downloads(self) -> BlobDownloads:
        return self.cache.downloads

    async def start(self) -> None:
        metrics.runtime_collector.runtime = self
        await self.cache.start()
        self.every(STATISTICS_FLUSH_SECONDS, self.cache.statistics.flush, "statistics flush")

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
            await self.cache.statistics.flush()
        await self.cache.aclose()
