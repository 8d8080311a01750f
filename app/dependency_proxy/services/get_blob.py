"""Serve a blob: from storage when the group holds it, else downloaded once from upstream.

Group isolation: bytes on disk and downloads in flight are shared, rows are per
group, and the right to read is decided by `grants.py` (the rule is stated
there). A group with a row is served its cache. Every other way to bytes —
stored for another group, joining a download, leading one — first needs the
upstream to have answered 2xx to this group's own credentials for this blob:
a HEAD before serving stored bytes or joining, or the GET that starts the
group's own download.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from app import clock, metrics
from app.dependency_proxy.downloads import BlobReader
from app.dependency_proxy.errors import BlobUnknown
from app.dependency_proxy.grants import Claim, GrantKey
from app.dependency_proxy.models import Blob, CacheStatus
from app.dependency_proxy.services.authorize_pull import PullContext
from app.dependency_proxy.upstream import UpstreamBlob
from app.dependency_proxy.upstream_auth import fingerprint_of

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


def grant_key(runtime: Runtime, pull: PullContext, image: str, digest: str) -> GrantKey:
    return GrantKey(
        group_id=pull.group.id,
        credentials=fingerprint_of(pull.credentials),
        repository=runtime.upstream.repository(image),
        digest=digest,
    )


def _upstream_head(
    runtime: Runtime, pull: PullContext, image: str, digest: str
) -> Callable[[], Awaitable[int]]:
    async def head() -> int:
        return await runtime.upstream.head_blob(image, digest, pull.credentials)

    return head


async def _stored(
    runtime: Runtime, pull: PullContext, image: str, digest: str
) -> StoredBlob | None:
    path = runtime.store.local_path(digest)
    if path is None:
        return None
    row = await _row(pull.group.id, digest)
    if row is not None:
        await _touch(row)
        return StoredBlob(digest=digest, size=row.size, path=path)
    # The bytes are here for another group: the upstream must confirm this
    # group may read them before anything is served or recorded.
    key = grant_key(runtime, pull, image, digest)
    await runtime.blob_grants.confirm(key, _upstream_head(runtime, pull, image, digest))
    try:
        size = path.stat().st_size
    except FileNotFoundError:  # cleaned up while we asked: download it instead
        return None
    await record_blob(pull.group.id, digest, size)
    # Cleanup may have removed the file while we asked the upstream; our
    # live row now keeps it from doing so again, so one more look settles it.
    if runtime.store.local_path(digest) is None:
        return None
    return StoredBlob(digest=digest, size=size, path=path)


async def _open_download(
    runtime: Runtime, pull: PullContext, image: str, digest: str
) -> BlobReader:
    """A reader of the blob's download, opened only as `grants.py` allows."""
    grants, key = runtime.blob_grants, grant_key(runtime, pull, image, digest)
    head = _upstream_head(runtime, pull, image, digest)
    claim: Claim | None = None
    if not grants.holds(key):
        if runtime.downloads.in_flight(digest) or grants.checking(key):
            # Someone's download is running (or this key is being checked):
            # the upstream answers for this group before it joins anything.
            await grants.confirm(key, head)
        else:
            # This group's own GET will start the download and be the check;
            # claimed now, so its next clients wait for that answer.
            claim = grants.claim(key)

    handed_over = False  # whether the download task runs (and so settles) the claim

    async def start() -> UpstreamBlob:
        nonlocal handed_over
        handed_over = True

        async def get() -> UpstreamBlob:
            return await runtime.upstream.open_blob(image, digest, pull.credentials)

        # This GET is a check like any other: a 2xx grants (or renews) the key,
        # a refusal revokes it.
        return await (claim.run(get) if claim is not None else grants.check(key, get))

    async def on_commit(size: int) -> None:
        await record_blob(pull.group.id, digest, size)

    try:
        reader = await runtime.downloads.open(digest, start, on_commit, party=key)
        if claim is not None and not claim.settled:
            # Our GET was never sent: the blob was committed, or another
            # download began, between our look and the open. Ask before reading.
            try:
                await claim.run(head)
            except BaseException:
                await reader.aclose()
                raise
        return reader
    finally:
        if claim is not None and not handed_over:
            claim.abandon()  # no-op once answered; frees waiters otherwise


async def get_blob(
    runtime: Runtime, pull: PullContext, image: str, digest: str
) -> StoredBlob | StreamingBlob:
    """The blob `digest` of `image` for the group: stored, or streaming from a download."""
    stored = await _stored(runtime, pull, image, digest)
    if stored is not None:
        runtime.statistics.add(pull.group.id, blob_hits=1)
        metrics.cache_requests.labels("blob", "hit").inc()
        return stored
    reader = await _open_download(runtime, pull, image, digest)
    runtime.statistics.add(pull.group.id, blob_misses=1)
    metrics.cache_requests.labels("blob", "miss").inc()
    return StreamingBlob(digest=digest, size=reader.size, reader=reader, group_id=pull.group.id)


async def head_blob(runtime: Runtime, pull: PullContext, image: str, digest: str) -> BlobInfo:
    """Size of a blob the group may read; asks the upstream unless the group holds it.

    A 2xx from the upstream is a confirmation like any other (`grants.py`); a
    refusal leaves nothing behind.
    """
    row = await _row(pull.group.id, digest)
    if row is not None and runtime.store.local_path(digest) is not None:
        return BlobInfo(digest=digest, size=row.size)
    key = grant_key(runtime, pull, image, digest)
    try:
        size = await runtime.blob_grants.check(key, _upstream_head(runtime, pull, image, digest))
    except BlobUnknown:
        raise BlobUnknown(f"{digest} does not exist upstream") from None
    return BlobInfo(digest=digest, size=size)
