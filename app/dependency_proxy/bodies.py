"""What the cache hands a surface to send, and the one place served bytes are counted.

A blob comes back as one of three bodies:

- `FileBody`: committed on this machine's disk. The surface sends the file as
  it is (zero-copy capable; the HTTP server honours Range).
- `RedirectBody`: committed in object storage in redirect mode. The surface
  answers 307 to the pre-signed URL.
- `StreamBody`: anything else (a download in progress, or a blob in object
  storage). The surface iterates `chunks(start, end)`; Range is allowed when
  `ranged` is true.

Each body records itself: a file or redirect when it is handed out, a stream
when its iteration ends (however it ends). A download's stream also records
the group's row once the whole verified blob has gone through it. Surfaces
never call back into the domain after sending.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app import metrics
from app.dependency_proxy.statistics import CacheStatistics

Source = Literal["cache", "upstream"]


def record_served(statistics: CacheStatistics, group_id: int, source: Source, size: int) -> None:
    """Count a response's body: the group's statistics, its usage over time and
    Prometheus, from one call."""
    if size <= 0:
        return
    statistics.add(group_id, **{f"bytes_from_{source}": size})
    statistics.usage.record_bytes(group_id, source, size)
    metrics.bytes_served.labels(source).inc(size)


@dataclass(frozen=True)
class BlobInfo:
    """For HEAD on a blob the group may read, without downloading it.

    `cache` is HIT when the group holds the blob (then `path` is its file on
    this machine, if the store keeps one, so a HEAD can answer exactly what the
    GET would), MISS when only the upstream confirmed it.
    """

    digest: str
    size: int
    cache: str = "HIT"
    path: Path | None = None


@dataclass(frozen=True)
class FileBody:
    digest: str
    size: int
    path: Path
    cache: str = "HIT"


@dataclass(frozen=True)
class RedirectBody:
    digest: str
    size: int
    url: str
    cache: str = "HIT"


OpenChunks = Callable[[int, int | None], AsyncIterator[bytes]]


class StreamBody:
    """A blob's bytes as an async stream that records itself when it ends."""

    def __init__(
        self,
        digest: str,
        size: int | None,
        cache: str,
        open_chunks: OpenChunks,
        *,
        ranged: bool,
        served: Callable[[int], None],
        delivered: Callable[[int], Awaitable[None]] | None = None,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.digest = digest
        self.size = size
        self.cache = cache
        self.ranged = ranged
        self._open = open_chunks
        self._served = served
        self._delivered = delivered
        self._close = close

    async def chunks(self, start: int = 0, end: int | None = None) -> AsyncGenerator[bytes]:
        """Bytes `[start, end)`; raises DownloadFailed mid-way if a download behind it
        fails (the surface must then abort its response, never end it cleanly)."""
        sent = 0
        try:
            async for chunk in self._open(start, end):
                sent += len(chunk)
                yield chunk
            if self._delivered is not None:
                # The whole verified blob went through: the group now holds it
                # (a download's commit records only the group that started it).
                await self._delivered(sent)
        finally:
            await self.aclose()
            self._served(sent)

    async def aclose(self) -> None:
        """Release what the body holds (idempotent); for a body never iterated."""
        close, self._close = self._close, None
        if close is not None:
            await close()
