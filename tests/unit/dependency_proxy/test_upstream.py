"""UpstreamClient against a fault-injecting fake registry on real sockets."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from app.dependency_proxy.credentials import fingerprint
from app.dependency_proxy.errors import (
    BlobUnknown,
    DigestMismatch,
    InvalidReference,
    ManifestUnknown,
    TooLarge,
    UpstreamDenied,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from app.dependency_proxy.upstream import (
    MANIFEST_MEDIA_TYPES,
    UpstreamClient,
    UpstreamCredentials,
)
from app.dependency_proxy.usage import UsageAccumulator, on_behalf_of
from tests.conftest import TEST_SECRET
from tests.support.fake_upstream import OCI_MANIFEST, FakeUpstream, sha256_digest
from tests.support.token_server import free_port

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode()


def credentials(username: str, password: str) -> UpstreamCredentials:
    return UpstreamCredentials(
        username, password, fingerprint(TEST_SECRET, username, password, "http://upstream.test")
    )


ALICE = credentials("alice", "alice-secret")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(users={"alice": "alice-secret"}, private={"acme/secret"}) as upstream:
        yield upstream


@pytest.fixture
def upstream(fake: FakeUpstream) -> FakeUpstream:
    fake.reset()
    fake.manifests.clear()
    fake.blobs.clear()
    return fake


@pytest.fixture
async def client(upstream: FakeUpstream) -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient(upstream.url, connect_timeout=1.0, read_timeout=0.5)
    yield client
    await client.aclose()


async def read_all(client: UpstreamClient, image: str, digest: str) -> tuple[bytes, list[int]]:
    blob = await client.open_blob(image, digest, None)
    async with blob:
        chunks = [chunk async for chunk in blob.chunks()]
    return b"".join(chunks), [len(chunk) for chunk in chunks]


# -- token dance -------------------------------------------------------------------


async def test_anonymous_token_dance_gets_the_manifest(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    digest = upstream.add_manifest("library/alpine", MANIFEST, tags=["3.20"])

    fetched = await client.get_manifest("alpine", "3.20", None, max_size=4096)

    assert (fetched.content, fetched.digest, fetched.media_type) == (MANIFEST, digest, OCI_MANIFEST)
    (token_request,) = upstream.received("token")
    assert "authorization" not in token_request.headers
    assert "scope=repository%3Alibrary%2Falpine%3Apull" in token_request.query
    assert "service=fake-registry" in token_request.query


async def test_token_is_cached_for_the_same_scope(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.add_manifest("library/alpine", MANIFEST, tags=["3.20"])

    await client.get_manifest("alpine", "3.20", None, max_size=4096)
    await client.head_manifest("alpine", "3.20", None)
    await client.get_manifest("alpine", "3.20", None, max_size=4096)

    assert upstream.requests["GET", "token"] == 1
    # The cached token is sent up front: only the very first request met a 401.
    assert client.request_counts["401"] == 1


async def test_token_is_fetched_again_once_it_expires(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.add_manifest("library/alpine", MANIFEST, tags=["3.20"])
    upstream.faults.token_expires_in = 1  # renewal margin is half of it: 0.5 s

    await client.get_manifest("alpine", "3.20", None, max_size=4096)
    await asyncio.sleep(0.6)
    await client.get_manifest("alpine", "3.20", None, max_size=4096)

    assert upstream.requests["GET", "token"] == 2


async def test_credentials_go_to_the_realm_as_basic(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.add_manifest("acme/secret", MANIFEST, tags=["v1"])

    await client.get_manifest("acme/secret", "v1", ALICE, max_size=4096)

    (token_request,) = upstream.received("token")
    expected = "Basic " + base64.b64encode(b"alice:alice-secret").decode()
    assert token_request.headers["authorization"] == expected
    for request in upstream.received("manifest"):
        assert "alice-secret" not in json.dumps(request.headers)


async def test_basic_challenge_is_answered_with_basic_credentials(upstream: FakeUpstream) -> None:
    upstream.auth = "basic"
    upstream.add_manifest("library/alpine", MANIFEST, tags=["3.20"])
    client = UpstreamClient(upstream.url)
    try:
        await client.get_manifest("alpine", "3.20", ALICE, max_size=4096)
        with pytest.raises(UpstreamDenied):
            await client.get_manifest("alpine", "3.20", None, max_size=4096)
    finally:
        upstream.auth = "bearer"
        await client.aclose()
    assert upstream.requests["GET", "token"] == 0


async def test_private_image_without_credentials_is_denied(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.add_manifest("acme/secret", MANIFEST, tags=["v1"])

    with pytest.raises(UpstreamDenied) as caught:
        await client.get_manifest("acme/secret", "v1", None, max_size=4096)
    # Docker Hub answers a missing repository as it answers a private one: say both.
    assert caught.value.message == (
        f"acme/secret does not exist upstream ({httpx.URL(client.base_url).netloc.decode()}), "
        "or needs upstream credentials: an Owner can set them in the group's "
        "Dependency Proxy settings"
    )


async def test_wrong_credentials_are_refused_without_leaking_them(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.add_manifest("acme/secret", MANIFEST, tags=["v1"])
    wrong = credentials("alice", "hunter2-wrong")

    with pytest.raises(UpstreamDenied, match="refused the group.s upstream credentials") as caught:
        await client.get_manifest("acme/secret", "v1", wrong, max_size=4096)
    assert "hunter2-wrong" not in str(caught.value)
    assert "hunter2-wrong" not in repr(wrong)


def passwords_sent_to_the_realm(upstream: FakeUpstream) -> list[str]:
    return [
        base64.b64decode(request.headers["authorization"][6:]).decode().partition(":")[2]
        if "authorization" in request.headers
        else ""
        for request in upstream.received("token")
    ]


async def test_a_wrong_secret_never_gets_the_right_secrets_token(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.add_manifest("acme/secret", MANIFEST, tags=["v1"])
    wrong = credentials("alice", "hunter2-wrong")

    await client.get_manifest("acme/secret", "v1", ALICE, max_size=4096)
    for _ in range(2):  # while the right secret's token is cached
        with pytest.raises(UpstreamDenied, match="refused the group.s upstream credentials"):
            await client.get_manifest("acme/secret", "v1", wrong, max_size=4096)
    await client.get_manifest("acme/secret", "v1", ALICE, max_size=4096)

    # Same identity, other secret: its own token request each time, refused;
    # the right secret's token stayed cached and was never presented for it.
    assert passwords_sent_to_the_realm(upstream) == [
        "alice-secret",
        "hunter2-wrong",
        "hunter2-wrong",
    ]


async def test_anonymous_and_equal_credentials_share_a_token(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.add_manifest("acme/secret", MANIFEST, tags=["v1"])
    upstream.add_manifest("library/alpine", MANIFEST, tags=["3.20"])
    same_as_alice = credentials("alice", "alice-secret")  # another group, the same secret

    await client.get_manifest("alpine", "3.20", None, max_size=4096)
    await client.get_manifest("alpine", "3.20", None, max_size=4096)
    await client.get_manifest("acme/secret", "v1", ALICE, max_size=4096)
    await client.get_manifest("acme/secret", "v1", same_as_alice, max_size=4096)

    assert passwords_sent_to_the_realm(upstream) == ["", "alice-secret"]


async def test_a_wrong_secret_is_refused_by_a_basic_registry_after_the_right_one(
    upstream: FakeUpstream,
) -> None:
    upstream.auth = "basic"
    upstream.add_manifest("acme/app", MANIFEST, tags=["v1"])
    client = UpstreamClient(upstream.url)
    try:
        await client.get_manifest("acme/app", "v1", ALICE, max_size=4096)
        with pytest.raises(UpstreamDenied):
            await client.get_manifest(
                "acme/app", "v1", credentials("alice", "wrong"), max_size=4096
            )
    finally:
        upstream.auth = "bearer"
        await client.aclose()


async def test_a_cookie_the_upstream_sets_never_rides_on_a_later_request(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.add_manifest("acme/secret", MANIFEST, tags=["v1"])
    upstream.add_manifest("library/alpine", MANIFEST, tags=["3.20"])
    upstream.faults.set_cookie = "session=alices-login; Path=/"

    await client.get_manifest("acme/secret", "v1", ALICE, max_size=4096)
    await client.get_manifest("alpine", "3.20", None, max_size=4096)

    assert len(upstream.log) >= 4
    assert all("cookie" not in request.headers for request in upstream.log)


@pytest.mark.parametrize("status", [500, 503])
async def test_failing_token_endpoint_is_unavailable(
    upstream: FakeUpstream, client: UpstreamClient, status: int
) -> None:
    upstream.add_manifest("library/alpine", MANIFEST, tags=["3.20"])
    upstream.faults.status["token"] = status

    with pytest.raises(UpstreamUnavailable, match=f"token endpoint answered {status}"):
        await client.get_manifest("alpine", "3.20", None, max_size=4096)


async def test_unreachable_token_endpoint_is_unavailable(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.faults.realm = f"http://127.0.0.1:{free_port()}/token"

    with pytest.raises(UpstreamUnavailable, match="could not connect to the upstream token"):
        await client.head_manifest("alpine", "3.20", None)


async def test_slow_token_endpoint_fails_within_the_timeout(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.faults.delay["token"] = 5.0

    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="token endpoint timed out after 0.5s"):
        await client.head_manifest("alpine", "3.20", None)
    assert time.monotonic() - started < 0.5 + 1.0


# -- manifests ---------------------------------------------------------------------


async def test_accept_header_lists_the_four_manifest_types(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    digest = upstream.add_manifest("library/alpine", MANIFEST, media_type=INDEX, tags=["3.20"])

    head = await client.head_manifest("alpine", "3.20", None)
    fetched = await client.get_manifest("alpine", "3.20", None, max_size=4096)

    assert (head.media_type, fetched.media_type) == (INDEX, INDEX)  # multi-arch stays multi-arch
    assert fetched.digest == digest
    for request in upstream.received("manifest"):
        accepted = {part.strip() for part in request.headers["accept"].split(",")}
        assert accepted == set(MANIFEST_MEDIA_TYPES)


async def test_one_segment_names_live_under_library(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.add_manifest("library/alpine", MANIFEST, tags=["3.20"])
    upstream.add_manifest("acme/tools/cli", MANIFEST, tags=["1"])

    await client.head_manifest("alpine", "3.20", None)
    await client.head_manifest("acme/tools/cli", "1", None)

    paths = [request.path for request in upstream.received("manifest")]
    assert "/v2/library/alpine/manifests/3.20" in paths
    assert "/v2/acme/tools/cli/manifests/1" in paths
    assert client.upstream_name("alpine") == "library/alpine"
    assert client.upstream_name("bitnami/redis") == "bitnami/redis"
    # The library/ rule is Docker Hub's: another registry gets the name as it is.
    other = UpstreamClient(upstream.url, docker_hub=False)
    try:
        assert other.upstream_name("alpine") == "alpine"
        assert other.repository("alpine") == f"{upstream.url}/alpine"
    finally:
        await other.aclose()


async def test_head_gives_digest_type_and_size(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    digest = upstream.add_manifest("library/alpine", MANIFEST, tags=["3.20"])

    head = await client.head_manifest("alpine", "3.20", None)

    assert (head.digest, head.media_type, head.size) == (digest, OCI_MANIFEST, len(MANIFEST))
    assert upstream.requests["GET", "manifest"] == 0


async def test_head_without_digest_header_falls_back_to_hashing_a_get(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    digest = upstream.add_manifest("library/alpine", MANIFEST, tags=["3.20"])
    upstream.faults.omit_digest_header = True

    head = await client.head_manifest("alpine", "3.20", None)

    assert (head.digest, head.size) == (digest, len(MANIFEST))
    assert upstream.requests["GET", "manifest"] == 1


async def test_manifest_by_digest_is_verified(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    digest = upstream.add_manifest("library/alpine", MANIFEST)
    upstream.faults.corrupt = True

    with pytest.raises(DigestMismatch):
        await client.get_manifest("alpine", digest, None, max_size=4096)


async def test_manifest_not_matching_its_digest_header_is_rejected(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.add_manifest("library/alpine", MANIFEST, tags=["3.20"])
    upstream.faults.wrong_digest_header = True

    with pytest.raises(DigestMismatch):
        await client.get_manifest("alpine", "3.20", None, max_size=4096)


async def test_manifest_over_max_size_is_too_large(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.add_manifest("library/alpine", MANIFEST, tags=["3.20"])

    with pytest.raises(TooLarge):
        await client.get_manifest("alpine", "3.20", None, max_size=len(MANIFEST) - 1)


async def test_invalid_references_never_reach_the_upstream(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    with pytest.raises(InvalidReference):
        await client.get_manifest("../etc", "latest", None, max_size=4096)
    with pytest.raises(InvalidReference):
        await client.open_blob("alpine", "sha256:nothex", None)
    assert not upstream.log


# -- blobs -------------------------------------------------------------------------


async def test_blob_is_streamed_in_chunks(upstream: FakeUpstream, client: UpstreamClient) -> None:
    content = bytes(range(256)) * 12_000  # ~3 MiB
    digest = upstream.add_blob("library/alpine", content)

    blob = await client.open_blob("alpine", digest, None)
    assert blob.size == len(content)
    async with blob:
        sizes = []
        received = bytearray()
        async for chunk in blob.chunks():
            sizes.append(len(chunk))
            received += chunk

    assert sha256_digest(bytes(received)) == digest
    assert len(sizes) > 1 and max(sizes) <= 1024 * 1024


async def test_blob_redirect_to_cdn_drops_authorization(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    content = b"layer bytes" * 1000
    digest = upstream.add_blob("acme/secret", content)
    upstream.faults.redirect_blobs = True

    blob = await client.open_blob("acme/secret", digest, ALICE)
    async with blob:
        received = b"".join([chunk async for chunk in blob.chunks()])
    size = await client.head_blob("acme/secret", digest, ALICE)

    assert received == content and size == len(content)
    registry_requests = upstream.received("blob")
    assert registry_requests[-1].headers["authorization"].startswith("Bearer ")
    cdn_requests = upstream.received("cdn")
    assert [r.method for r in cdn_requests] == ["GET", "HEAD"]
    for request in cdn_requests:
        assert "authorization" not in request.headers
        assert request.headers["host"].startswith("localhost:")


async def test_head_blob_gives_size_and_unknown_blob_is_blob_unknown(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    digest = upstream.add_blob("library/alpine", b"12345")

    assert await client.head_blob("alpine", digest, None) == 5
    with pytest.raises(BlobUnknown):
        await client.head_blob("alpine", sha256_digest(b"other"), None)
    with pytest.raises(BlobUnknown):
        await client.open_blob("alpine", sha256_digest(b"other"), None)


async def test_blob_cut_mid_stream_raises_from_the_iterator(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    digest = upstream.add_blob("library/alpine", b"x" * 500_000)
    upstream.faults.cut_blob_after = 200_000

    with pytest.raises(UpstreamUnavailable, match="closed the connection"):
        await read_all(client, "alpine", digest)


async def test_blob_stalling_mid_stream_times_out_from_the_iterator(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    digest = upstream.add_blob("library/alpine", b"x" * 500_000)
    upstream.faults.stall_blob_after = 200_000
    upstream.faults.stall_seconds = 10

    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="timed out after 0.5s"):
        await read_all(client, "alpine", digest)
    assert time.monotonic() - started < 0.5 + 1.0


# -- status mapping ----------------------------------------------------------------


async def test_unknown_manifest_is_manifest_unknown(client: UpstreamClient) -> None:
    with pytest.raises(ManifestUnknown):
        await client.get_manifest("alpine", "nope", None, max_size=4096)
    with pytest.raises(ManifestUnknown):
        await client.head_manifest("alpine", "nope", None)


async def test_rate_limited_upstream_says_when_to_retry(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.faults.status["manifest"] = 429
    upstream.faults.retry_after = "42"

    with pytest.raises(UpstreamRateLimited) as caught:
        await client.head_manifest("alpine", "3.20", None)
    assert caught.value.retry_after == 42


@pytest.mark.parametrize("status", [401, 403])
async def test_refusals_after_the_token_dance_are_denied(
    upstream: FakeUpstream, client: UpstreamClient, status: int
) -> None:
    upstream.faults.status["blob"] = status

    with pytest.raises(UpstreamDenied, match="library/alpine does not exist upstream"):
        await client.head_blob("alpine", sha256_digest(b"x"), None)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_unavailable(
    upstream: FakeUpstream, client: UpstreamClient, status: int
) -> None:
    upstream.faults.status["manifest"] = status

    with pytest.raises(UpstreamUnavailable, match=f"upstream answered {status}"):
        await client.get_manifest("alpine", "3.20", None, max_size=4096)


async def test_slow_upstream_fails_within_the_timeout(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.add_manifest("library/alpine", MANIFEST, tags=["3.20"])
    upstream.faults.delay["manifest"] = 5.0

    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="timed out after 0.5s"):
        await client.head_manifest("alpine", "3.20", None)
    assert time.monotonic() - started < 0.5 + 1.0


async def test_unreachable_upstream_is_unavailable() -> None:
    client = UpstreamClient(f"http://127.0.0.1:{free_port()}", connect_timeout=1.0)
    try:
        with pytest.raises(UpstreamUnavailable, match="could not connect to the upstream"):
            await client.head_manifest("alpine", "3.20", None)
    finally:
        await client.aclose()
    assert client.request_counts["connection_error"] == 1


async def test_rate_limit_headers_are_recorded(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.add_manifest("library/alpine", MANIFEST, tags=["3.20"])
    upstream.faults.ratelimit = (100, 76)
    assert client.rate_limit is None

    await client.get_manifest("alpine", "3.20", None, max_size=4096)

    assert client.rate_limit is not None
    assert (client.rate_limit.limit, client.rate_limit.remaining) == (100, 76)
    assert client.request_counts["200"] >= 2  # the token and the manifest


async def test_upstream_responses_count_for_the_group_the_work_is_for(
    upstream: FakeUpstream, client: UpstreamClient
) -> None:
    upstream.add_manifest("library/alpine", MANIFEST, tags=["3.20"])
    upstream.faults.ratelimit = (100, 76)
    usage = UsageAccumulator()
    await client.get_manifest("alpine", "3.20", None, max_size=4096)  # for no group
    with on_behalf_of(usage, 7):
        await client.get_manifest("alpine", "3.20", None, max_size=4096)
    upstream.faults.ratelimit = (100, 75)
    with on_behalf_of(usage, 8):
        await client.head_manifest("alpine", "3.20", None)

    seven, eight = usage.pending(7), usage.pending(8)
    assert [counts.upstream_requests for counts in seven.values()] == [1]  # token kept
    assert [counts.rate_limit_remaining for counts in seven.values()] == [76]
    assert [counts.rate_limit_remaining for counts in eight.values()] == [75]
