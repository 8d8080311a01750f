"""Resolution over a group's upstreams, and isolation between groups whose upstreams
differ: against two fake registries X (the instance's default, "Docker Hub") and Y."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Iterator

import pytest

from app import metrics
from app.config import Settings
from app.dependency_proxy import credentials
from app.dependency_proxy.bodies import StreamBody
from app.dependency_proxy.cache import PullThroughCache
from app.dependency_proxy.errors import (
    BlobUnknown,
    ManifestUnknown,
    NoUpstreamForHost,
    UpstreamDenied,
    UpstreamUnavailable,
)
from app.dependency_proxy.group_settings import setting_for
from app.dependency_proxy.models import Blob, ImageUpstream, Manifest
from app.dependency_proxy.services.add_upstream import add_upstream
from app.dependency_proxy.services.authorize_pull import PullContext
from app.dependency_proxy.services.get_blob import get_blob, head_blob
from app.dependency_proxy.services.get_manifest import get_manifest
from app.dependency_proxy.services.remove_upstream import remove_upstream
from app.dependency_proxy.upstream_lists import set_docker_hub_credentials
from app.dependency_proxy.upstreams import DefaultCredentials, split_host, upstreams_for
from app.errors import NotFound
from app.groups import records as groups
from tests.support.fake_upstream import FakeUpstream
from tests.support.operator import OPERATOR

pytestmark = pytest.mark.usefixtures("database")

LAYER = os.urandom(50_000)


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with (
        FakeUpstream(users={"alice": "alice-secret"}, private={"private/app"}) as x,
        FakeUpstream(users={"yuri": "yuri-secret"}) as y,
    ):
        yield x, y


@pytest.fixture
def x(fakes: tuple[FakeUpstream, FakeUpstream]) -> FakeUpstream:
    fakes[0].reset()
    return fakes[0]


@pytest.fixture
def y(fakes: tuple[FakeUpstream, FakeUpstream]) -> FakeUpstream:
    fakes[1].reset()
    return fakes[1]


@pytest.fixture
async def hub_settings(database: Settings, x: FakeUpstream) -> Settings:
    return dataclasses.replace(database, upstream_url=x.url)


@pytest.fixture
async def cache(hub_settings: Settings) -> AsyncIterator[PullThroughCache]:
    cache = PullThroughCache.from_settings(hub_settings)
    await cache.start()
    try:
        yield cache
    finally:
        await cache.aclose()


async def pull_in(path: str, settings: Settings) -> PullContext:
    group = await groups.get_group(path)
    return PullContext(
        group=group,
        setting=await setting_for(group),
        upstreams=await upstreams_for(group, settings, None),
    )


async def read(body: object) -> bytes:
    assert isinstance(body, StreamBody)
    return b"".join([chunk async for chunk in body.chunks()])


def test_a_host_leads_a_name_as_dockers_reference_grammar_decides() -> None:
    assert split_host("ghcr.io/owner/tool") == ("ghcr.io", "owner/tool")
    assert split_host("localhost/tool") == ("localhost", "tool")
    assert split_host("127.77.3.1/team/tool") == ("127.77.3.1", "team/tool")
    assert split_host("registry:5000/tool") == ("registry:5000", "tool")
    assert split_host("bitnami/redis") == (None, "bitnami/redis")
    assert split_host("alpine") == (None, "alpine")
    assert split_host("ghcr.io") == (None, "ghcr.io")  # one component is a name, not a host


async def test_the_first_upstream_that_has_it_wins_and_is_remembered(
    cache: PullThroughCache, hub_settings: Settings, x: FakeUpstream, y: FakeUpstream
) -> None:
    await groups.create_group("acme")
    group = await groups.get_group("acme")
    await add_upstream(OPERATOR, group, hub_settings, url=y.url, name="y")
    digest, content = y.add_image("tools/only-y", "1", [LAYER])

    pull = await pull_in("acme", hub_settings)
    first = await get_manifest(cache, pull, "tools/only-y", "1")
    assert first.content == content and first.cache == "MISS"
    # X was asked first (its token dance and the GET that found nothing).
    assert {r.path for r in x.received("manifest")} == {"/v2/tools/only-y/manifests/1"}
    remembered = await ImageUpstream.get(group_id=group.id, image_name="tools/only-y")
    assert remembered.upstream_id == pull.upstreams[1].id  # type: ignore[attr-defined]

    x.reset()
    y.reset()
    again = await get_manifest(cache, await pull_in("acme", hub_settings), "tools/only-y", "1")
    assert again.cache == "HIT" and again.digest == digest
    assert x.received("manifest") == []  # asked the remembered one only
    assert {r.method for r in y.received("manifest")} == {"HEAD"}  # reset() voids tokens: 2
    blob = await get_blob(cache, pull, "tools/only-y", y.add_blob("tools/only-y", LAYER))
    assert await read(blob) == LAYER
    assert x.received("blob") == []


async def test_the_library_rule_is_docker_hubs_only(
    cache: PullThroughCache, hub_settings: Settings, x: FakeUpstream, y: FakeUpstream
) -> None:
    group = await groups.create_group("plainy")
    await add_upstream(OPERATOR, group, hub_settings, url=y.url, name="y")
    await remove_upstream(OPERATOR, group, "docker-hub")
    y.add_image("alpine", "3.19", [LAYER])
    x.add_image("library/alpine", "3.19", [b"hub"])

    result = await get_manifest(cache, await pull_in("plainy", hub_settings), "alpine", "3.19")
    assert result.cache == "MISS"
    assert {r.path for r in y.received("manifest")} == {"/v2/alpine/manifests/3.19"}
    assert x.received("manifest") == []


async def test_a_cold_miss_fails_over_and_a_cached_tag_is_served_stale(
    cache: PullThroughCache, hub_settings: Settings, x: FakeUpstream, y: FakeUpstream
) -> None:
    group = await groups.create_group("failing")
    await add_upstream(OPERATOR, group, hub_settings, url=y.url, name="y")
    x.add_image("shared/app", "1", [b"from x"])
    _, from_y = y.add_image("shared/app", "1", [b"from y"])
    x.faults.status["manifest"] = 503

    pull = await pull_in("failing", hub_settings)
    result = await get_manifest(cache, pull, "shared/app", "1")
    assert result.content == from_y and result.cache == "MISS"

    # Now cached and remembered on Y; Y fails: the cached bytes, not X's.
    x.faults.status.clear()
    y.faults.status["manifest"] = 503
    stale = await get_manifest(cache, pull, "shared/app", "1")
    assert stale.content == from_y and stale.cache == "STALE"
    # X saw only the first pull's failing GET; the stale answer asked Y alone.
    assert {r.method for r in x.received("manifest")} == {"GET"}


async def test_every_upstream_missing_it_is_manifest_unknown_and_one_down_is_unavailable(
    cache: PullThroughCache, hub_settings: Settings, x: FakeUpstream, y: FakeUpstream
) -> None:
    group = await groups.create_group("nowhere")
    await add_upstream(OPERATOR, group, hub_settings, url=y.url, name="y")
    pull = await pull_in("nowhere", hub_settings)
    with pytest.raises(ManifestUnknown, match="does not exist on any of 2 upstreams"):
        await get_manifest(cache, pull, "missing/app", "1")
    y.faults.status["manifest"] = 503
    with pytest.raises(UpstreamUnavailable):
        await get_manifest(cache, pull, "missing/app", "2")
    assert await Manifest.filter(group_id=group.id).count() == 0


async def test_a_host_qualified_name_goes_to_that_host_only_or_is_name_unknown(
    cache: PullThroughCache, hub_settings: Settings, x: FakeUpstream, y: FakeUpstream
) -> None:
    group = await groups.create_group("hosts")
    pull = await pull_in("hosts", hub_settings)
    with pytest.raises(NoUpstreamForHost, match="no upstream for ghcr.io") as refused:
        await get_manifest(cache, pull, "ghcr.io/owner/tool", "1")
    assert isinstance(refused.value, NotFound)  # 404 NAME_UNKNOWN on /v2
    # docker.io/... names the Docker Hub upstream, with its library/ rule.
    x.add_image("library/busybox", "1", [LAYER])
    result = await get_manifest(cache, pull, "docker.io/busybox", "1")
    assert result.cache == "MISS"
    assert {r.path for r in x.received("manifest")} == {"/v2/library/busybox/manifests/1"}
    assert y.received("manifest") == []
    assert await Manifest.filter(group_id=group.id, image_name="docker.io/busybox").exists()


async def test_bytes_fetched_through_one_groups_upstream_need_the_other_groups_own_upstream(
    cache: PullThroughCache, hub_settings: Settings, x: FakeUpstream, y: FakeUpstream
) -> None:
    """Group A pulls a private layer through X with its credentials; group B, whose
    only upstream is Y, asks for the same digest under the same name: Y is asked
    (and has nothing), X never is; nothing is served or recorded for B. Group C,
    whose Y holds the same bytes in a repository of its own, may read them."""
    digest = x.add_blob("private/app", LAYER)
    a = await groups.create_group("a-with-x")
    await set_docker_hub_credentials(a, hub_settings, "alice", "alice-secret")
    pull_a = await pull_in("a-with-x", hub_settings)
    assert await read(await get_blob(cache, pull_a, "private/app", digest)) == LAYER
    assert await cache.store.stat(digest) == len(LAYER)

    b = await groups.create_group("b-with-y")
    await add_upstream(OPERATOR, b, hub_settings, url=y.url, name="y")
    await remove_upstream(OPERATOR, b, "docker-hub")
    pull_b = await pull_in("b-with-y", hub_settings)
    x.reset()
    with pytest.raises(BlobUnknown):
        await get_blob(cache, pull_b, "private/app", digest)
    with pytest.raises(BlobUnknown):
        await head_blob(cache, pull_b, "private/app", digest)
    assert x.received("blob") == []
    assert {r.path for r in y.received("blob")} == {f"/v2/private/app/blobs/{digest}"}
    assert await Blob.filter(group_id=b.id).count() == 0

    # B adds X too, anonymously: X refuses the private repository; still nothing.
    await add_upstream(OPERATOR, b, hub_settings, url=x.url, name="x-anonymous")
    with pytest.raises(UpstreamDenied):
        await get_blob(cache, await pull_in("b-with-y", hub_settings), "private/app", digest)
    assert await Blob.filter(group_id=b.id).count() == 0

    # C's upstream Y holds the same bytes itself: Y's yes is what lets C read them.
    y.add_blob("mirror/app", LAYER)
    c = await groups.create_group("c-with-y")
    await add_upstream(
        OPERATOR, c, hub_settings, url=y.url, username="yuri", password="yuri-secret", name="y"
    )
    await remove_upstream(OPERATOR, c, "docker-hub")
    y.reset()
    body = await get_blob(cache, await pull_in("c-with-y", hub_settings), "mirror/app", digest)
    assert body.size == len(LAYER)
    assert {r.method for r in y.received("blob")} == {"HEAD"}  # a check, no second download
    assert await Blob.filter(group_id=c.id).count() == 1


async def test_one_account_on_two_registries_is_two_fingerprints(
    hub_settings: Settings, x: FakeUpstream, y: FakeUpstream
) -> None:
    group = await groups.create_group("twice")
    await add_upstream(
        OPERATOR, group, hub_settings, url=y.url, name="y", username="bot", password="same"
    )
    await remove_upstream(OPERATOR, group, "docker-hub")
    await add_upstream(
        OPERATOR, group, hub_settings, url=x.url, name="x", username="bot", password="same"
    )
    entries = await upstreams_for(group, hub_settings, None)
    fingerprints = {entry.credentials.fingerprint for entry in entries if entry.credentials}
    assert len(fingerprints) == 2


async def test_instance_defaults_serve_docker_hub_only_where_a_group_set_none(
    cache: PullThroughCache, hub_settings: Settings, x: FakeUpstream, y: FakeUpstream
) -> None:
    defaults = DefaultCredentials(
        credentials.encrypt(hub_settings.secret_key, "alice"),
        credentials.encrypt(hub_settings.secret_key, "alice-secret"),
    )
    digest = x.add_blob("private/app", LAYER)
    plain = await groups.create_group("relies")
    await add_upstream(OPERATOR, plain, hub_settings, url=y.url, name="y")
    entries = await upstreams_for(plain, hub_settings, defaults)
    hub, other = entries
    assert hub.docker_hub and hub.credentials is not None and hub.credentials.username == "alice"
    assert other.credentials is None  # never sent to another registry
    pull = PullContext(group=plain, setting=await setting_for(plain), upstreams=entries)
    assert await read(await get_blob(cache, pull, "private/app", digest)) == LAYER

    own = await groups.create_group("own-creds")
    await set_docker_hub_credentials(own, hub_settings, "alice", "wrong")
    [own_hub] = await upstreams_for(own, hub_settings, defaults)
    assert own_hub.credentials is not None and own_hub.credentials.password == "wrong"
    pull = PullContext(group=own, setting=await setting_for(own), upstreams=(own_hub,))
    with pytest.raises(UpstreamDenied):  # the group's own (wrong) ones win
        await get_blob(cache, pull, "private/app", digest)


async def test_a_tag_every_upstream_lacks_is_remembered_for_that_group_and_list_only(
    cache: PullThroughCache, hub_settings: Settings, x: FakeUpstream, y: FakeUpstream
) -> None:
    """The negative cache over several upstreams: after X and Y both said 404, the
    group's next ask reaches neither; another group (same default upstream X) still
    asks, and so does the first group once its list changed."""
    group = await groups.create_group("ci-loop")
    await add_upstream(OPERATOR, group, hub_settings, url=y.url, name="y")
    pull = await pull_in("ci-loop", hub_settings)
    with pytest.raises(ManifestUnknown):
        await get_manifest(cache, pull, "team/app", "next")
    assert x.received("manifest") and y.received("manifest")  # both were asked
    x.reset()
    y.reset()
    remembered = metrics.negative_cache_hits._value.get()
    with pytest.raises(ManifestUnknown, match="said so less than"):
        await get_manifest(cache, pull, "team/app", "next")
    assert x.received("manifest") == [] and y.received("manifest") == []
    assert metrics.negative_cache_hits._value.get() == remembered + 1

    await groups.create_group("other-team")
    with pytest.raises(ManifestUnknown, match="does not exist upstream$"):
        await get_manifest(cache, await pull_in("other-team", hub_settings), "team/app", "next")
    assert x.received("manifest")  # its own ask, not the first group's answer

    # Y gets the tag and the first group drops X: a new list asks again, and Y answers.
    y.add_image("team/app", "next", [LAYER])
    await remove_upstream(OPERATOR, group, "docker-hub")
    result = await get_manifest(cache, await pull_in("ci-loop", hub_settings), "team/app", "next")
    assert result.cache == "MISS"
