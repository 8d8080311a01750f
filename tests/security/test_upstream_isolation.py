"""Groups never get each other's upstream tokens, grants or private bytes.

Against the real reference registry with a private repository (`alice` may pull
`private/...`, anyone else may not) and a live Dockyard. What reached the
registry and the token server is counted from their own logs, not from
Dockyard's view.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable

import httpx
import pytest

from tests.security.upstream_support import (
    RIGHT,
    WRONG,
    CacheCounts,
    Puller,
    cache_counts,
    group_with,
    oci_error,
    poll_during,
    registry_answers,
    set_upstream_credentials,
    successes,
)
from tests.support.dockyard_server import Account, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import Image
from tests.support.token_server import TokenServer

pytest_plugins = ["tests.security.upstream_fixtures"]
pytestmark = pytest.mark.e2e


def sha256(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def assert_refused_credentials(answer: httpx.Response) -> None:
    assert answer.status_code == 403, answer.text
    if answer.request.method == "GET":
        code, message = oci_error(answer)
        assert code == "DENIED"
        assert "refused the group's upstream credentials" in message


def assert_refused(answer: httpx.Response) -> None:
    assert answer.status_code == 403, answer.text
    assert "X-Cache" not in answer.headers
    if answer.request.method == "GET":
        assert oci_error(answer)[0] == "DENIED"


def test_a_wrong_secret_is_refused_while_the_right_secrets_token_is_cached(
    isolated_dockyard: DockyardServer,
    owner: Account,
    stranger: Account,
    reference_registry: SeededReferenceRegistry,
    token_server: TokenServer,
) -> None:
    server, private = isolated_dockyard, reference_registry.seeded.private
    assert private.tag is not None
    right = Puller(server, group_with(server, owner, "ann", RIGHT), private.repository)
    wrong_group = group_with(server, stranger, "bob", WRONG)
    wrong = Puller(server, wrong_group, private.repository)

    def issued_to_alice(status: int) -> int:
        return len([r for r in token_server.requests if (r.account, r.status) == ("alice", status)])

    answer = right.manifest(private.tag)
    assert answer.status_code == 200 and answer.content == private.manifest
    for blob in private.blobs:
        answer = right.blob(blob.digest)
        assert answer.status_code == 200 and answer.content == blob.data
    right_tokens = issued_to_alice(200)
    reference_registry.reset_counts()
    for _ in range(2):  # right after the right secret's pull, and once more
        assert_refused_credentials(wrong.manifest(private.tag))
        assert_refused_credentials(wrong.manifest(private.tag, "HEAD"))
        assert_refused_credentials(wrong.manifest(private.digest))
        for blob in private.blobs:
            assert_refused_credentials(wrong.blob(blob.digest))
            assert_refused_credentials(wrong.blob(blob.digest, "HEAD"))
    # Nothing the wrong secret asked for was answered by the registry.
    assert reference_registry.access_log()
    assert all(entry.status >= 400 for entry in reference_registry.access_log())
    assert cache_counts(server, wrong_group) == CacheCounts(images=0, blobs=0)

    # The right secret's token was cached all along: its group pulls again
    # without a new token, while every try of the wrong secret was refused.
    assert right.manifest(private.tag).status_code == 200
    assert issued_to_alice(200) == right_tokens
    assert issued_to_alice(401) >= 2


async def test_a_refused_group_never_joins_another_groups_download(
    isolated_dockyard: DockyardServer,
    owner: Account,
    stranger: Account,
    reference_registry: SeededReferenceRegistry,
    push_private_large_image: Callable[[], Image],
) -> None:
    server = isolated_dockyard
    image = push_private_large_image()
    layer = image.layers[0]
    authorised = Puller(server, group_with(server, owner, "amy", RIGHT), image.repository)
    refused_group = group_with(
        server, stranger, "carl", None
    )  # anonymous: private/ is closed to it
    refused = Puller(server, refused_group, image.repository)
    reference_registry.reset_counts()

    assert_refused(refused.blob(layer.digest))
    async with httpx.AsyncClient(timeout=120) as client:
        download = asyncio.create_task(authorised.ablob(client, layer.digest))
        polls = await poll_during(
            server, layer.digest, download, lambda: refused.ablob(client, layer.digest)
        )
        leader = await download

    assert leader.status_code == 200 and sha256(leader.content) == layer.digest
    for poll in polls:
        assert poll.status == 403 and len(poll.content) < 1024
    assert any(poll.during_download for poll in polls), "no poll overlapped the download"
    # Afterwards: still refused, nothing recorded for the refused group.
    assert_refused(refused.blob(layer.digest))
    assert_refused(refused.blob(layer.digest, "HEAD"))
    assert cache_counts(server, refused_group).blobs == 0
    # The registry let exactly one request read the layer: the authorised download.
    counts = registry_answers(reference_registry, layer.digest)
    assert successes(counts, "GET") == 1 and successes(counts, "HEAD") == 0


@pytest.mark.parametrize("credentials", [None, WRONG], ids=["anonymous", "wrong-secret"])
def test_a_refused_head_leaves_nothing_behind(
    isolated_dockyard: DockyardServer,
    owner: Account,
    stranger: Account,
    reference_registry: SeededReferenceRegistry,
    credentials: tuple[str, str] | None,
) -> None:
    server, private = isolated_dockyard, reference_registry.seeded.private
    layer = private.layers[1]
    refused_group = group_with(server, stranger, "dan", credentials)
    refused = Puller(server, refused_group, private.repository)

    assert_refused(refused.blob(layer.digest, "HEAD"))
    owner = Puller(server, group_with(server, owner, "fay", RIGHT), private.repository)
    assert owner.blob(layer.digest).content == layer.data  # the bytes are on disk now
    reference_registry.reset_counts()
    for method in ("HEAD", "GET", "HEAD"):
        assert_refused(refused.blob(layer.digest, method))
    assert cache_counts(server, refused_group) == CacheCounts(images=0, blobs=0)
    # Each try was asked upstream again (nothing remembered), and each was refused.
    counts = registry_answers(reference_registry, layer.digest)
    assert sum(n for (method, _), n in counts.items() if method == "HEAD") >= 3
    assert successes(counts, "HEAD") == 0 and successes(counts, "GET") == 0


async def test_a_group_whose_secret_changed_loses_its_grants_but_keeps_its_rows(
    isolated_dockyard: DockyardServer,
    owner: Account,
    stranger: Account,
    reference_registry: SeededReferenceRegistry,
    push_private_large_image: Callable[[], Image],
) -> None:
    server = isolated_dockyard
    image = push_private_large_image()
    layer = image.layers[0]
    changed_group = group_with(server, owner, "eve", RIGHT)
    changed = Puller(server, changed_group, image.repository)
    other = Puller(server, group_with(server, stranger, "gil", RIGHT), image.repository)

    # With the right secret: the tag is cached, the config blob is held, and the
    # upstream confirmed the large layer (a HEAD) without it being downloaded.
    assert changed.manifest("1").status_code == 200
    assert changed.blob(image.config.digest).content == image.config.data
    assert changed.blob(layer.digest, "HEAD").status_code == 200
    set_upstream_credentials(server, changed_group, WRONG)

    async with httpx.AsyncClient(timeout=120) as client:
        download = asyncio.create_task(other.ablob(client, layer.digest))
        polls = await poll_during(
            server, layer.digest, download, lambda: changed.ablob(client, layer.digest)
        )
        leader = await download
    assert leader.status_code == 200 and sha256(leader.content) == layer.digest
    assert all(poll.status == 403 and len(poll.content) < 1024 for poll in polls)
    assert any(poll.during_download for poll in polls), "no poll overlapped the download"
    assert_refused_credentials(changed.blob(layer.digest))
    assert_refused_credentials(changed.blob(layer.digest, "HEAD"))
    # A tag is revalidated with the new secret, so it is refused...
    assert_refused_credentials(changed.manifest("1"))
    # ...but what the group already holds stays its own: its rows are its cache.
    held = changed.blob(image.config.digest)
    assert held.status_code == 200 and held.headers["X-Cache"] == "HIT"
    by_digest = changed.manifest(image.digest)
    assert by_digest.status_code == 200 and by_digest.headers["X-Cache"] == "HIT"
    assert cache_counts(server, changed_group) == CacheCounts(images=1, blobs=1)


def test_groups_share_a_token_only_with_the_same_credentials(
    isolated_dockyard: DockyardServer,
    owner: Account,
    stranger: Account,
    reference_registry: SeededReferenceRegistry,
    token_server: TokenServer,
) -> None:
    server, seeded = isolated_dockyard, reference_registry.seeded
    nginx, redis = seeded.nginx, seeded.redis
    for user, prefix in (
        (owner, "ida"),
        (stranger, "jan"),
    ):  # no credentials: one anonymous token for both
        pull = Puller(server, group_with(server, user, prefix, None), nginx.repository)
        assert pull.manifest("1.25").content == nginx.manifest
        for blob in nginx.blobs:
            assert pull.blob(blob.digest).content == blob.data
    for user, prefix in (
        (owner, "kai"),
        (stranger, "lea"),
    ):  # the same identity and secret: one token for both
        pull = Puller(server, group_with(server, user, prefix, RIGHT), redis.repository)
        assert pull.manifest("7").content == redis.manifest

    def issued(repository: str) -> list[tuple[str, int]]:
        scope = f"repository:{repository}:pull"
        return [(r.account, r.status) for r in token_server.requests if scope in r.scopes]

    assert issued(nginx.repository) == [("", 200)]
    assert issued(redis.repository) == [("alice", 200)]


async def test_one_groups_crowd_on_its_own_download_is_checked_upstream_once(
    isolated_dockyard: DockyardServer,
    owner: Account,
    stranger: Account,
    reference_registry: SeededReferenceRegistry,
    push_private_large_image: Callable[[], Image],
) -> None:
    server = isolated_dockyard
    image = push_private_large_image()
    layer = image.layers[0]
    pull = Puller(server, group_with(server, owner, "max", RIGHT), image.repository)
    reference_registry.reset_counts()

    async with httpx.AsyncClient(timeout=120) as client:
        answers = await asyncio.gather(*(pull.ablob(client, layer.digest) for _ in range(8)))
    assert all(a.status_code == 200 and sha256(a.content) == layer.digest for a in answers)
    counts = registry_answers(reference_registry, layer.digest)
    assert successes(counts, "GET") == 1
    assert sum(n for (method, _), n in counts.items() if method == "HEAD") == 0
