"""The relay (`downloads/cluster.py`): a follower instance streams the holder's growing
blob and checks it; wrong or cut bytes never reach a client as a complete blob; a
holder that no longer has the download makes it look again and lead. The holder is
an injected HTTP transport; the leases a stand-in (the real ones: tests/e2e)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import cast

import httpx
import pytest

from app.dependency_proxy.downloads import BlobDownloads, internal
from app.dependency_proxy.downloads.cluster import ClusterDownloads
from app.dependency_proxy.downloads.leases import Acquired, Holder, PostgresLeases
from app.dependency_proxy.errors import DownloadFailed
from app.dependency_proxy.storage.local import LocalBlobStore
from app.logging import request_id
from tests.unit.dependency_proxy.test_downloads import (
    CHUNK,
    DATA,
    DIGEST,
    WRONG,
    FakeBlob,
    FakeUpstream,
    read_all,
    read_until_failure,
)

SECRET = "k" * 48
HOLDER = Holder(holder="b:1:x", address="http://instance-b:5000")


class Leases:
    """Answers `acquire` from a script; records releases."""

    lease_seconds = 10.0

    def __init__(self, *outcomes: Acquired | Holder) -> None:
        self.outcomes = list(outcomes)
        self.released: list[str] = []

    async def acquire(self, digest: str) -> Acquired | Holder:
        return self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]

    async def renew(self, digest: str) -> bool:
        return True

    async def release(self, digest: str) -> None:
        self.released.append(digest)

    async def leased(self, digests: object) -> set[str]:
        return set()


class HolderEndpoint:
    """The holder's internal endpoint: checks the token, answers from a script."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        digest = request.url.path.removeprefix(internal.PATH)
        assert internal.verify(SECRET, digest, request.headers["authorization"])
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def growing(data: bytes) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        for offset in range(0, len(data), CHUNK):
            yield data[offset : offset + CHUNK]

    return httpx.Response(200, headers={internal.SIZE_HEADER: str(len(DATA))}, content=body())


def downloads(
    tmp_path: Path, leases: Leases, holder: Callable[[httpx.Request], httpx.Response]
) -> BlobDownloads:
    store = LocalBlobStore(tmp_path)
    cluster = ClusterDownloads(
        cast(PostgresLeases, leases),
        store,
        SECRET,
        chunk_size=CHUNK,
        transport=httpx.MockTransport(holder),
    )
    return BlobDownloads(store, max_size=1 << 30, chunk_size=CHUNK, cluster=cluster)


async def test_a_follower_relays_the_holders_blob_without_fetching_it(tmp_path: Path) -> None:
    leases, holder, upstream = Leases(HOLDER), HolderEndpoint(growing(DATA)), FakeUpstream()
    committed: list[int] = []

    async def on_commit(size: int) -> None:
        committed.append(size)

    blobs = downloads(tmp_path, leases, holder)
    try:
        reader = await blobs.open(DIGEST, upstream.start, on_commit)
        assert reader.size == len(DATA)
        assert await read_all(reader) == DATA
    finally:
        await blobs.aclose()
    assert upstream.calls == 0  # the holder fetched it, not us
    assert committed == []  # our starter never asked the upstream: no row for it
    assert leases.released == []  # we never held the lease


async def test_the_relay_carries_the_client_requests_id_to_the_holder(tmp_path: Path) -> None:
    """One request-id mechanism (`app.logging`): the id of the pull a follower serves
    goes to the holder, whose middleware adopts it for its log lines."""
    holder = HolderEndpoint(growing(DATA))
    blobs = downloads(tmp_path, Leases(HOLDER), holder)
    token = request_id.set("pull-5f2a")
    try:
        assert await read_all(await blobs.open(DIGEST, FakeUpstream().start, None)) == DATA
    finally:
        request_id.reset(token)
        await blobs.aclose()
    assert [request.headers.get("x-request-id") for request in holder.requests] == ["pull-5f2a"]


@pytest.mark.parametrize("sent", [WRONG, DATA[: len(DATA) // 2]], ids=["wrong", "cut"])
async def test_wrong_or_cut_bytes_from_the_holder_never_reach_a_client_whole(
    tmp_path: Path, sent: bytes
) -> None:
    leases, holder, upstream = Leases(HOLDER), HolderEndpoint(growing(sent)), FakeUpstream()
    blobs = downloads(tmp_path, leases, holder)
    try:
        reader = await blobs.open(DIGEST, upstream.start)
        received, error = await read_until_failure(reader)
    finally:
        await blobs.aclose()
    assert isinstance(error, DownloadFailed)
    assert len(received) <= len(DATA) - CHUNK  # the unverified last chunk never went out
    assert DATA.startswith(received)
    assert upstream.calls == 0


async def test_a_holder_without_the_download_makes_the_follower_look_again_and_lead(
    tmp_path: Path,
) -> None:
    # The holder just finished and forgot it (404); then the lease is free.
    leases = Leases(HOLDER, Acquired(took_over=False))
    holder = HolderEndpoint(httpx.Response(404, json={"errors": []}))
    upstream = FakeUpstream(FakeBlob(DATA))
    committed: list[int] = []

    async def on_commit(size: int) -> None:
        committed.append(size)

    blobs = downloads(tmp_path, leases, holder)
    try:
        reader = await blobs.open(DIGEST, upstream.start, on_commit)
        assert await read_all(reader) == DATA
    finally:
        await blobs.aclose()
    assert len(holder.requests) == 1 and upstream.calls == 1
    assert committed == [len(DATA)]
    assert leases.released == [DIGEST]  # after the row was recorded
    stored = LocalBlobStore(tmp_path).path_for(DIGEST).read_bytes()
    assert "sha256:" + hashlib.sha256(stored).hexdigest() == DIGEST


async def test_an_unreachable_holder_that_commits_meanwhile_leaves_the_blob_to_the_store(
    tmp_path: Path,
) -> None:
    store = LocalBlobStore(tmp_path)

    def unreachable(request: httpx.Request) -> httpx.Response:
        # The holder finishes and commits while we cannot reach it (a wrong internal URL).
        path = store.path_for(DIGEST)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(DATA)
        raise httpx.ConnectError("connection refused", request=request)

    upstream = FakeUpstream()
    blobs = downloads(tmp_path, Leases(HOLDER), unreachable)
    try:
        reader = await blobs.open(DIGEST, upstream.start)
        assert await read_all(reader) == DATA
    finally:
        await blobs.aclose()
    assert upstream.calls == 0


async def test_a_holder_that_never_answers_fails_the_request_before_any_byte(
    tmp_path: Path,
) -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    blobs = downloads(tmp_path, Leases(HOLDER), refused)
    blobs._cluster.patience = 0.3  # type: ignore[union-attr]
    try:
        with pytest.raises(DownloadFailed):
            await blobs.open(DIGEST, FakeUpstream().start)
    finally:
        await blobs.aclose()
