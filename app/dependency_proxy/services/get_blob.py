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

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from app import clock, metrics
from app.dependency_proxy.bodies import (
    BlobInfo,
    FileBody,
    RedirectBody,
    StreamBody,
    record_served,
)
from app.dependency_proxy.cache import PullThroughCache
from app.dependency_proxy.downloads import Reader
from app.dependency_proxy.errors import BlobUnknown, DependencyProxyError
from app.dependency_proxy.grants import Claim, GrantKey
from app.dependency_proxy.models import Blob, CacheStatus
from app.dependency_proxy.rows import record_blob
from app.dependency_proxy.services.authorize_pull import PullContext
from app.dependency_proxy.upstream import UpstreamBlob, UpstreamClient
from app.dependency_proxy.upstream_auth import fingerprint_of
from app.dependency_proxy.upstreams import FAILOVER_ERRORS, Candidate, candidates, first_failure
from app.dependency_proxy.usage import counted_for_group

READ_AT_RESOLUTION = timedelta(minutes=1)

BlobBody = FileBody | RedirectBody | StreamBody


async def _row(group_id: int, digest: str) -> Blob | None:
    return await Blob.filter(group_id=group_id, digest=digest, status=CacheStatus.DEFAULT).first()


async def _touch(row: Blob) -> None:
    now = clock.now()
    if now - row.read_at > READ_AT_RESOLUTION:
        await Blob.filter(id=row.id).update(read_at=now)


class _Source:
    """One upstream of the group, as the blob paths use it."""

    def __init__(self, cache: PullThroughCache, candidate: Candidate) -> None:
        self.client: UpstreamClient = cache.client_for(
            candidate.upstream.url, candidate.upstream.docker_hub
        )
        self.image = candidate.image
        self.credentials = candidate.upstream.credentials

    def head(self, cache: PullThroughCache, digest: str) -> Callable[[], Awaitable[int]]:
        return cache.upstream_head(self.client, self.image, digest, self.credentials)


def grant_key(pull: PullContext, source: _Source, digest: str) -> GrantKey:
    # The repository names the upstream's URL and the fingerprint covers it too:
    # a yes from one registry never stands for another's.
    return GrantKey(
        group_id=pull.group.id,
        credentials=fingerprint_of(source.credentials),
        repository=source.client.repository(source.image),
        digest=digest,
    )


async def _committed_body(
    cache: PullThroughCache, pull: PullContext, digest: str, size: int, path: Path | None
) -> BlobBody:
    """The body of a committed blob: the file, a redirect, or a stream from the store."""
    group_id, statistics, store = pull.group.id, cache.statistics, cache.store
    if path is not None:
        record_served(statistics, group_id, "cache", size)
        return FileBody(digest=digest, size=size, path=path)
    url = await store.presigned_url(digest)
    if url is not None:
        record_served(statistics, group_id, "cache", size)
        return RedirectBody(digest=digest, size=size, url=url)

    return StreamBody(
        digest,
        size,
        "HIT",
        lambda start, end: store.open_range(digest, start, end),
        ranged=True,
        served=lambda sent: record_served(statistics, group_id, "cache", sent),
    )


async def _stored(
    cache: PullThroughCache, pull: PullContext, source: _Source, digest: str
) -> BlobBody | None:
    store = cache.store
    path = store.local_path(digest)
    if path is None and store.keeps_files:
        return None
    row = await _row(pull.group.id, digest)
    if row is not None:
        # A live row keeps cleanup away from the bytes: no need to ask the store.
        await _touch(row)
        return await _committed_body(cache, pull, digest, row.size, path)
    size = await store.stat(digest)
    if size is None:
        return None
    # The bytes are here for another group: the upstream must confirm this
    # group may read them before anything is served or recorded.
    key = grant_key(pull, source, digest)
    await cache.grants.confirm(key, source.head(cache, digest))
    await record_blob(pull.group.id, digest, size)
    # Cleanup may have removed the blob while we asked the upstream; our
    # live row now keeps it from doing so again, so one more look settles it.
    if await store.stat(digest) is None:
        return None
    return await _committed_body(cache, pull, digest, size, store.local_path(digest))


async def _open_download(
    cache: PullThroughCache, pull: PullContext, source: _Source, digest: str
) -> Reader:
    """A reader of the blob's download, opened only as `grants.py` allows."""
    grants, key = cache.grants, grant_key(pull, source, digest)
    head = source.head(cache, digest)
    claim: Claim | None = None
    if not grants.holds(key):
        if cache.downloads.in_flight(digest) or grants.checking(key):
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
            return await source.client.open_blob(source.image, digest, source.credentials)

        # This GET is a check like any other: a 2xx grants (or renews) the key,
        # a refusal revokes it.
        return await (claim.run(get) if claim is not None else grants.check(key, get))

    async def on_commit(size: int) -> None:
        await record_blob(pull.group.id, digest, size)

    try:
        reader = await cache.downloads.open(digest, start, on_commit, party=key)
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


def _download_body(
    cache: PullThroughCache, pull: PullContext, digest: str, reader: Reader
) -> StreamBody:
    group_id, statistics = pull.group.id, cache.statistics

    async def delivered(size: int) -> None:
        await record_blob(group_id, digest, size)

    return StreamBody(
        digest,
        reader.size,
        "MISS",
        lambda start, end: reader,
        ranged=False,
        served=lambda sent: record_served(statistics, group_id, "upstream", sent),
        delivered=delivered,
        close=reader.aclose,
    )


async def _from(
    cache: PullThroughCache, pull: PullContext, source: _Source, digest: str
) -> BlobBody:
    stored = await _stored(cache, pull, source, digest)
    if stored is not None:
        cache.statistics.add(pull.group.id, blob_hits=1)
        metrics.cache_requests.labels("blob", "hit").inc()
        return stored
    reader = await _open_download(cache, pull, source, digest)
    cache.statistics.add(pull.group.id, blob_misses=1)
    metrics.cache_requests.labels("blob", "miss").inc()
    return _download_body(cache, pull, digest, reader)


@counted_for_group
async def get_blob(cache: PullThroughCache, pull: PullContext, image: str, digest: str) -> BlobBody:
    """The blob `digest` of `image` for the group: stored, or streaming from a download.

    The image's upstream (remembered, or the first) is asked first; the others
    only when it lacks the blob or fails, each with its own check.
    """
    errors: list[DependencyProxyError] = []
    for candidate in await candidates(pull.group, pull.upstreams, image):
        try:
            return await _from(cache, pull, _Source(cache, candidate), digest)
        except FAILOVER_ERRORS as error:
            errors.append(error)
    raise first_failure(errors)


@counted_for_group
async def head_blob(
    cache: PullThroughCache, pull: PullContext, image: str, digest: str
) -> BlobInfo:
    """Size of a blob the group may read, never downloading its body.

    HIT when the group holds it; otherwise (MISS) an upstream HEAD with the
    group's credentials answers. Nothing is recorded for the group either way:
    a HEAD caches nothing. A 2xx from the upstream is a confirmation like any
    other (`grants.py`); a refusal leaves nothing behind.
    """
    store = cache.store
    row = await _row(pull.group.id, digest)
    if row is not None:
        path = store.local_path(digest)
        if path is not None or not store.keeps_files:
            return BlobInfo(digest=digest, size=row.size, cache="HIT", path=path)
    errors: list[DependencyProxyError] = []
    for candidate in await candidates(pull.group, pull.upstreams, image):
        source = _Source(cache, candidate)
        try:
            size = await cache.grants.check(
                grant_key(pull, source, digest), source.head(cache, digest)
            )
        except FAILOVER_ERRORS as error:
            errors.append(error)
            continue
        return BlobInfo(digest=digest, size=size, cache="MISS")
    failure = first_failure(errors)
    if isinstance(failure, BlobUnknown):
        raise BlobUnknown(f"{digest} does not exist upstream") from None
    raise failure
