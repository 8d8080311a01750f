"""get_blob and head_blob ask the upstream before any shared bytes reach a group,
on the paths an end-to-end test cannot time: the blob committed, or its download
begun, between the service's look and its open."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Iterator

import pytest

from app.config import Settings
from app.dependency_proxy.bodies import StreamBody
from app.dependency_proxy.cache import PullThroughCache
from app.dependency_proxy.credentials import fingerprint
from app.dependency_proxy.downloads import OnCommit, Reader, StartDownload
from app.dependency_proxy.errors import UpstreamDenied
from app.dependency_proxy.grants import GrantKey
from app.dependency_proxy.group_settings import setting_for
from app.dependency_proxy.models import Blob
from app.dependency_proxy.services.authorize_pull import PullContext
from app.dependency_proxy.services.get_blob import get_blob, head_blob
from app.dependency_proxy.storage import write_blob
from app.dependency_proxy.upstream import UpstreamCredentials
from app.dependency_proxy.upstream_auth import fingerprint_of
from app.dependency_proxy.upstreams import UpstreamEntry
from app.groups import records as groups
from tests.conftest import TEST_SECRET
from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.usefixtures("database")

IMAGE = "private/app"
LAYER = os.urandom(100_000)


@pytest.fixture(scope="module")
def fake_session() -> Iterator[FakeUpstream]:
    with FakeUpstream(users={"alice": "alice-secret"}, private={IMAGE}) as upstream:
        yield upstream


FAKE: dict[str, str] = {}


@pytest.fixture
def fake(fake_session: FakeUpstream) -> FakeUpstream:
    fake_session.reset()
    FAKE["url"] = fake_session.url
    return fake_session


@pytest.fixture
async def cache(database: Settings, fake: FakeUpstream) -> AsyncIterator[PullThroughCache]:
    cache = PullThroughCache.from_settings(dataclasses.replace(database, upstream_url=fake.url))
    await cache.start()
    try:
        yield cache
    finally:
        await cache.aclose()


async def pull_for(path: str, secret: str | None, url: str = "") -> PullContext:
    group = await groups.create_group(path)
    credentials = None
    if secret is not None:
        credentials = UpstreamCredentials(
            "alice", secret, fingerprint(TEST_SECRET, "alice", secret, url)
        )
    # The instance's upstream (the fake): the cache's own client serves it.
    hub = UpstreamEntry(None, "docker-hub", url or FAKE["url"], True, credentials, None, None)
    return PullContext(group=group, setting=await setting_for(group), upstreams=(hub,))


def grant_key(cache: PullThroughCache, pull: PullContext, digest: str) -> GrantKey:
    """The key a check of IMAGE's blob with the group's (only) upstream records."""
    return GrantKey(
        group_id=pull.group.id,
        credentials=fingerprint_of(pull.upstreams[0].credentials),
        repository=cache.upstream.repository(IMAGE),
        digest=digest,
    )


def committed_just_before_open(cache: PullThroughCache, content: bytes) -> None:
    """Another group's download commits the blob between the service's look and its open."""
    original = cache.downloads.open

    async def open_after_commit(
        digest: str, start: StartDownload, on_commit: OnCommit | None = None, party: object = None
    ) -> Reader:
        async def once() -> AsyncIterator[bytes]:
            yield content

        await write_blob(cache.store, digest, once())
        return await original(digest, start, on_commit, party)

    cache.downloads.open = open_after_commit  # type: ignore[method-assign]


@pytest.mark.parametrize("secret", [None, "wrong"], ids=["anonymous", "wrong-secret"])
async def test_bytes_committed_between_look_and_open_are_refused_without_a_grant(
    cache: PullThroughCache, fake: FakeUpstream, secret: str | None
) -> None:
    digest = fake.add_blob(IMAGE, LAYER)
    pull = await pull_for("refused", secret)
    committed_just_before_open(cache, LAYER)

    with pytest.raises(UpstreamDenied):
        await get_blob(cache, pull, IMAGE, digest)

    assert await Blob.filter(group_id=pull.group.id).count() == 0
    assert not cache.grants.holds(grant_key(cache, pull, digest))
    assert fake.received("blob", "GET") == []  # it never started a download of its own


async def test_bytes_committed_between_look_and_open_reach_a_confirmed_group(
    cache: PullThroughCache, fake: FakeUpstream
) -> None:
    digest = fake.add_blob(IMAGE, LAYER)
    pull = await pull_for("allowed", "alice-secret")
    committed_just_before_open(cache, LAYER)

    blob = await get_blob(cache, pull, IMAGE, digest)

    assert isinstance(blob, StreamBody)
    assert b"".join([chunk async for chunk in blob.chunks()]) == LAYER
    assert [r.method for r in fake.received("blob") if "authorization" in r.headers] == ["HEAD"]
    assert cache.grants.holds(grant_key(cache, pull, digest))


async def test_a_refused_download_leaves_no_grant_row_or_spool(
    cache: PullThroughCache, fake: FakeUpstream
) -> None:
    digest = fake.add_blob(IMAGE, LAYER)
    pull = await pull_for("refused", None)

    with pytest.raises(UpstreamDenied):
        await get_blob(cache, pull, IMAGE, digest)
    with pytest.raises(UpstreamDenied):
        await head_blob(cache, pull, IMAGE, digest)

    assert not cache.grants.holds(grant_key(cache, pull, digest))
    assert await Blob.filter(group_id=pull.group.id).count() == 0
    assert list(cache.store.spool_dir.iterdir()) == []
    assert await cache.store.stat(digest) is None


async def test_a_confirmed_head_lets_the_group_join_without_asking_again(
    cache: PullThroughCache, fake: FakeUpstream
) -> None:
    digest = fake.add_blob(IMAGE, LAYER)
    pull = await pull_for("allowed", "alice-secret")
    other = await pull_for("other", "alice-secret")

    assert (await head_blob(cache, pull, IMAGE, digest)).size == len(LAYER)
    committed_just_before_open(cache, LAYER)
    blob = await get_blob(cache, pull, IMAGE, digest)
    assert isinstance(blob, StreamBody)
    await blob.aclose()
    # One HEAD (the explicit one) for this group; another group with the very
    # same credentials is still asked for itself: grants are per group.
    assert len([r for r in fake.received("blob", "HEAD") if "authorization" in r.headers]) == 1
    stored = await get_blob(cache, other, IMAGE, digest)
    assert stored.size == len(LAYER)
    assert len([r for r in fake.received("blob", "HEAD") if "authorization" in r.headers]) == 2
