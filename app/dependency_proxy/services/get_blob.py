"""Serve a blob: from storage when the group holds it, else downloaded once from upstream.

Group isolation: bytes on disk are shared, rows are per group. A group is
served stored bytes only when it holds a row for the digest, or when the
upstream confirms (a HEAD with the group's credentials) that it may read the
blob; then the row is recorded.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from app import clock, metrics
from app.dependency_proxy.downloads import BlobReader
from app.dependency_proxy.errors import BlobUnknown
from app.dependency_proxy.models import Blob, CacheStatus
from app.dependency_proxy.services.authorize_pull import PullContext
from app.dependency_proxy.upstream import UpstreamBlob

if TYPE_CHECKING:
    from app.runtime import Runtime

READ_AT_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class StoredBlob:
    """A committed blob this group may read: serve the file (Range allowed)."""

    digest: str
    size: int
    path: Path


@dataclass(frozen=True)
class StreamingBlob:
    """A blob being downloaded: stream it as it arrives."""

    digest: str
    size: int | None
    reader: BlobReader
    group_id: int

    async def delivered(self, size: int) -> None:
        """Call after the whole blob reached the client: the group now holds it
        (the download's own commit records only the group that started it)."""
        await record_blob(self.group_id, self.digest, size)


@dataclass(frozen=True)
class BlobInfo:
    """For HEAD on a blob this group may read, without downloading it."""

    digest: str
    size: int


async def _row(group_id: int, digest: str) -> Blob | None:
    return await Blob.filter(group_id=group_id, digest=digest, status=CacheStatus.DEFAULT).first()


# The download's commit and the client that started it both record the row,
# often at the same moment: one lock per (group, digest) keeps it to one row.
_recording: weakref.WeakValueDictionary[tuple[int, str], asyncio.Lock] = (
    weakref.WeakValueDictionary()
)


async def record_blob(group_id: int, digest: str, size: int) -> None:
    """Record that the group holds the blob (idempotent for live rows)."""
    lock = _recording.setdefault((group_id, digest), asyncio.Lock())
    async with lock:
        if await _row(group_id, digest) is None:
            await Blob.create(group_id=group_id, digest=digest, size=size, read_at=clock.now())


async def _touch(row: Blob) -> None:
    now = clock.now()
    if now - row.read_at > READ_AT_RESOLUTION:
        await Blob.filter(id=row.id).update(read_at=now)


async def _stored(
    runtime: Runtime, pull: PullContext, image: str, digest: str
) -> StoredBlob | None:
    path = runtime.store.local_path(digest)
    if path is None:
        return None
    row = await _row(pull.group.id, digest)
    if row is not None:
        await _touch(row)
        size = row.size
    else:
        # The bytes are here for another group: ask the upstream whether this
        # group may read them before serving anything.
        size = await runtime.upstream.head_blob(image, digest, pull.credentials)
        await record_blob(pull.group.id, digest, size)
        # Cleanup may have removed the file while we asked the upstream; our
        # live row now keeps it from doing so again, so one more look settles it.
        if runtime.store.local_path(digest) is None:
            return None
    return StoredBlob(digest=digest, size=size, path=path)


async def get_blob(
    runtime: Runtime, pull: PullContext, image: str, digest: str
) -> StoredBlob | StreamingBlob:
    """The blob `digest` of `image` for the group: stored, or streaming from a download."""
    stored = await _stored(runtime, pull, image, digest)
    if stored is not None:
        runtime.statistics.add(pull.group.id, blob_hits=1)
        metrics.cache_requests.labels("blob", "hit").inc()
        return stored

    group_id = pull.group.id
    grant = (group_id, digest)
    if runtime.downloads.in_flight(digest) and not runtime.blob_grants.holds(grant):
        # Joining a download another group may have started: the upstream must
        # confirm this group may read the blob first.
        await runtime.upstream.head_blob(image, digest, pull.credentials)
    # This group is allowed now (it was confirmed, or its own GET starts the
    # download): its next clients joining the same download need not ask again.
    runtime.blob_grants.add(grant)

    async def start() -> UpstreamBlob:
        return await runtime.upstream.open_blob(image, digest, pull.credentials)

    async def on_commit(size: int) -> None:
        await record_blob(group_id, digest, size)

    reader = await runtime.downloads.open(digest, start, on_commit)
    runtime.statistics.add(group_id, blob_misses=1)
    metrics.cache_requests.labels("blob", "miss").inc()
    return StreamingBlob(digest=digest, size=reader.size, reader=reader, group_id=group_id)


async def head_blob(runtime: Runtime, pull: PullContext, image: str, digest: str) -> BlobInfo:
    """Size of a blob the group may read; asks the upstream only on a miss."""
    row = await _row(pull.group.id, digest)
    if row is not None and runtime.store.local_path(digest) is not None:
        return BlobInfo(digest=digest, size=row.size)
    try:
        size = await runtime.upstream.head_blob(image, digest, pull.credentials)
    except BlobUnknown:
        raise BlobUnknown(f"blob unknown: {digest} does not exist upstream") from None
    return BlobInfo(digest=digest, size=size)
