"""A live Dockyard in front of a fault-injecting upstream: nothing corrupt is ever cached
or served as complete, stale content is served when the upstream fails, and a cold
blob is fetched once however many clients ask."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.dockyard_server import Account, DockyardServer
from tests.support.fake_upstream import FakeUpstream

pytestmark = pytest.mark.e2e

READ_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, fake: FakeUpstream
) -> Iterator[DockyardServer]:
    env = {
        "DOCKYARD_UPSTREAM_CONNECT_TIMEOUT": "1",
        "DOCKYARD_UPSTREAM_READ_TIMEOUT": str(READ_TIMEOUT),
    }
    with DockyardServer(tmp_path_factory.mktemp("faults"), fake.url, env=env) as dockyard:
        yield dockyard


@pytest.fixture(scope="module")
def account(server: DockyardServer) -> Account:
    return server.provision("fran", "faults")


@pytest.fixture(autouse=True)
def clean_faults(fake: FakeUpstream) -> Iterator[None]:
    fake.reset()
    yield
    fake.reset()


def upstream_layer(fake: FakeUpstream, name: str, size: int) -> tuple[bytes, str]:
    """A one-layer image `library/<name>:1` upstream: its layer and the layer's digest."""
    layer = os.urandom(size)
    fake.add_image(f"library/{name}", "1", [layer])
    return layer, "sha256:" + hashlib.sha256(layer).hexdigest()


class Puller:
    def __init__(self, server: DockyardServer, account: Account, image: str) -> None:
        self.base = f"{server.url}/v2/{account.group}/dependency_proxy/containers/{image}"
        self.headers = {"Authorization": f"Bearer {server.registry_token(account, image)}"}

    def manifest(self, reference: str) -> httpx.Response:
        return httpx.get(f"{self.base}/manifests/{reference}", headers=self.headers, timeout=30)

    def blob(self, digest: str) -> httpx.Response:
        return httpx.get(f"{self.base}/blobs/{digest}", headers=self.headers, timeout=30)


def stored(server: DockyardServer, digest: str) -> bool:
    hex_digest = digest.split(":", 1)[1]
    return (server.data_dir / "blobs" / "sha256" / hex_digest[:2] / hex_digest).exists()


def blob_downloads(fake: FakeUpstream) -> int:
    """Blob GETs that carried a token: the bodies the upstream really sent (a worker
    whose token cache is cold first gets the 401 challenge, which has no body)."""
    return len([r for r in fake.received("blob", "GET") if "authorization" in r.headers])


def spool_is_empty(server: DockyardServer) -> bool:
    spool = server.data_dir / "spool"
    return not spool.exists() or not [p for p in spool.iterdir() if not p.name.startswith(".")]


def test_wrong_bytes_are_never_cached_and_the_client_sees_a_broken_response(
    server: DockyardServer, account: Account, fake: FakeUpstream
) -> None:
    layer, digest = upstream_layer(fake, "corrupt", 300_000)
    pull = Puller(server, account, "corrupt")
    assert pull.manifest("1").status_code == 200
    fake.faults.corrupt = True
    with pytest.raises(httpx.HTTPError):
        pull.blob(digest)
    assert not stored(server, digest)
    assert spool_is_empty(server)

    fake.faults.corrupt = False
    answer = pull.blob(digest)
    assert answer.status_code == 200 and answer.content == layer
    assert stored(server, digest)


def test_a_stream_cut_in_the_middle_is_not_cached_and_the_next_pull_succeeds(
    server: DockyardServer, account: Account, fake: FakeUpstream
) -> None:
    layer, digest = upstream_layer(fake, "cut", 2_000_000)
    pull = Puller(server, account, "cut")
    assert pull.manifest("1").status_code == 200
    fake.faults.cut_blob_after = 500_000
    with pytest.raises(httpx.HTTPError):
        pull.blob(digest)
    assert not stored(server, digest)
    fake.faults.cut_blob_after = None
    answer = pull.blob(digest)
    assert answer.content == layer and answer.headers["X-Cache"] == "MISS"
    again = pull.blob(digest)
    assert again.content == layer and again.headers["X-Cache"] == "HIT"


@pytest.mark.parametrize(
    ("status", "code"), [(429, "TOOMANYREQUESTS"), (503, "UNAVAILABLE"), (500, "UNAVAILABLE")]
)
def test_rate_limits_and_server_errors_serve_stale_or_fail_clearly(
    server: DockyardServer, account: Account, fake: FakeUpstream, status: int, code: str
) -> None:
    fake.add_image(f"library/flaky{status}", "1", [os.urandom(1000)])
    pull = Puller(server, account, f"flaky{status}")
    fresh = pull.manifest("1")
    assert fresh.status_code == 200 and fresh.headers["X-Cache"] == "MISS"
    fake.faults.status["manifest"] = status
    stale = pull.manifest("1")
    assert stale.status_code == 200 and stale.headers["X-Cache"] == "STALE"
    assert stale.content == fresh.content

    failed = pull.manifest("never-cached")
    assert failed.status_code == (429 if status == 429 else 503)
    assert failed.json()["errors"][0]["code"] == code


def test_a_slow_upstream_fails_within_the_timeout(
    server: DockyardServer, account: Account, fake: FakeUpstream
) -> None:
    fake.add_image("library/slow", "1", [os.urandom(1000)])
    pull = Puller(server, account, "slow")
    assert pull.manifest("1").status_code == 200
    fake.faults.delay["manifest"] = 20
    started = time.monotonic()
    stale = pull.manifest("1")
    assert stale.headers["X-Cache"] == "STALE"
    failed = pull.manifest("other")
    elapsed = time.monotonic() - started
    assert failed.status_code == 503
    assert "timed out" in failed.json()["errors"][0]["message"]
    assert elapsed < 2 * (1 + 2 * READ_TIMEOUT) + 2


def test_an_upstream_404_is_manifest_unknown(server: DockyardServer, account: Account) -> None:
    answer = Puller(server, account, "does-not-exist").manifest("1")
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_ten_clients_of_one_cold_blob_cause_one_upstream_download(
    server: DockyardServer, account: Account, fake: FakeUpstream
) -> None:
    layer, digest = upstream_layer(fake, "crowd", 8 * 1024 * 1024)
    pull = Puller(server, account, "crowd")
    assert pull.manifest("1").status_code == 200
    fake.faults.delay["blob"] = 1.0  # everyone arrives while the first download waits

    async def one() -> bytes:
        async with httpx.AsyncClient(timeout=60) as client:
            answer = await client.get(f"{pull.base}/blobs/{digest}", headers=pull.headers)
            assert answer.status_code == 200
            return answer.content

    async def crowd() -> list[bytes]:
        return await asyncio.gather(*(one() for _ in range(10)))

    bodies = asyncio.run(crowd())
    assert all(hashlib.sha256(body).hexdigest() == digest.split(":")[1] for body in bodies)
    assert len(fake.received("blob", "GET")) == 1
    # One group's clients joining its own download are not re-checked upstream.
    assert fake.received("blob", "HEAD") == []


def test_another_group_joining_a_download_is_checked_upstream_first(
    server: DockyardServer, account: Account, fake: FakeUpstream
) -> None:
    layer, digest = upstream_layer(fake, "joined", 1024 * 1024)
    first = Puller(server, account, "joined")
    other = Puller(server, server.provision("jo", "joiners"), "joined")
    assert first.manifest("1").status_code == 200
    fake.faults.delay["blob"] = 1.5

    async def both() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            leader = asyncio.create_task(
                client.get(f"{first.base}/blobs/{digest}", headers=first.headers)
            )
            await asyncio.sleep(0.5)  # the first group's download is in flight
            joiner = await client.get(f"{other.base}/blobs/{digest}", headers=other.headers)
            return await leader, joiner

    leader, joiner = asyncio.run(both())
    assert leader.content == layer and joiner.content == layer
    assert len(fake.received("blob", "HEAD")) == 1  # the joining group was checked
    assert blob_downloads(fake) == 1


def test_a_client_that_goes_away_does_not_cancel_the_download(
    server: DockyardServer, account: Account, fake: FakeUpstream
) -> None:
    layer, digest = upstream_layer(fake, "quitter", 4 * 1024 * 1024)
    pull = Puller(server, account, "quitter")
    assert pull.manifest("1").status_code == 200
    with httpx.stream(
        "GET", f"{pull.base}/blobs/{digest}", headers=pull.headers, timeout=30
    ) as answer:
        next(answer.iter_bytes(1024))
    deadline = time.monotonic() + 10
    while not stored(server, digest) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored(server, digest)
    answer = pull.blob(digest)
    assert answer.content == layer and answer.headers["X-Cache"] == "HIT"
    assert len(fake.received("blob", "GET")) == 1


def test_blob_redirects_to_a_cdn_do_not_leak_our_authorization(
    server: DockyardServer, account: Account, fake: FakeUpstream
) -> None:
    layer, digest = upstream_layer(fake, "cdn", 100_000)
    pull = Puller(server, account, "cdn")
    assert pull.manifest("1").status_code == 200
    fake.faults.redirect_blobs = True
    assert pull.blob(digest).content == layer
    cdn = fake.received("cdn")
    assert cdn and all("authorization" not in request.headers for request in cdn)


def test_range_requests_on_a_cached_blob(
    server: DockyardServer, account: Account, fake: FakeUpstream, tmp_path: Path
) -> None:
    layer, digest = upstream_layer(fake, "ranged", 50_000)
    pull = Puller(server, account, "ranged")
    assert pull.manifest("1").status_code == 200
    assert pull.blob(digest).content == layer
    part = httpx.get(
        f"{pull.base}/blobs/{digest}",
        headers={**pull.headers, "Range": "bytes=100-199"},
        timeout=10,
    )
    assert part.status_code == 206
    assert part.content == layer[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(layer)}"


def test_bytes_on_disk_for_one_group_are_not_served_to_another_without_upstream_consent(
    server: DockyardServer, account: Account, fake: FakeUpstream
) -> None:
    layer, digest = upstream_layer(fake, "isolated", 10_000)
    pull = Puller(server, account, "isolated")
    assert pull.manifest("1").status_code == 200
    assert pull.blob(digest).content == layer

    other = server.provision("olga", "other-group")
    del fake.blobs["library/isolated", digest]  # the upstream no longer lets anyone read it
    answer = Puller(server, other, "isolated").blob(digest)
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    # The group that pulled it keeps being served from its cache.
    assert pull.blob(digest).headers["X-Cache"] == "HIT"


def test_head_and_get_carry_the_same_headers(
    server: DockyardServer, account: Account, fake: FakeUpstream
) -> None:
    layer, digest = upstream_layer(fake, "headers", 5_000)
    pull = Puller(server, account, "headers")
    get = pull.manifest("1")
    names = ("Content-Type", "Docker-Content-Digest", "Content-Length", "ETag")
    for url in (
        f"{pull.base}/manifests/1",
        f"{pull.base}/manifests/{get.headers['Docker-Content-Digest']}",
    ):
        head = httpx.head(url, headers=pull.headers, timeout=10)
        assert head.status_code == 200 and head.content == b""
        assert {n: head.headers[n] for n in names} == {n: get.headers[n] for n in names}
    assert int(get.headers["Content-Length"]) == len(get.content)
    blob_get = pull.blob(digest)
    blob_head = httpx.head(f"{pull.base}/blobs/{digest}", headers=pull.headers, timeout=10)
    for name in ("Docker-Content-Digest", "Content-Length", "ETag"):
        assert blob_head.headers[name] == blob_get.headers[name]


def test_download_once_holds_across_worker_processes(tmp_path: Path, fake: FakeUpstream) -> None:
    layer, digest = upstream_layer(fake, "workers", 6 * 1024 * 1024)
    env = {"DOCKYARD_WORKERS": "2", "DOCKYARD_UPSTREAM_READ_TIMEOUT": "5"}
    with DockyardServer(tmp_path / "workers", fake.url, env=env) as server:
        account = server.provision("walt", "workers")
        pull = Puller(server, account, "workers")
        assert pull.manifest("1").status_code == 200
        fake.faults.delay["blob"] = 1.0

        async def one() -> bytes:
            # A new connection each: the kernel spreads them over both workers.
            async with httpx.AsyncClient(timeout=60) as client:
                answer = await client.get(f"{pull.base}/blobs/{digest}", headers=pull.headers)
                return answer.content

        async def crowd() -> list[bytes]:
            return await asyncio.gather(*(one() for _ in range(12)))

        bodies = asyncio.run(crowd())
    assert all(body == layer for body in bodies)
    assert blob_downloads(fake) == 1


def test_clearing_the_cache_during_a_pull_leaves_nothing_corrupt(
    server: DockyardServer, account: Account, fake: FakeUpstream
) -> None:
    layer, digest = upstream_layer(fake, "cleared", 3 * 1024 * 1024)
    pull = Puller(server, account, "cleared")
    assert pull.manifest("1").headers["X-Cache"] == "MISS"
    fake.faults.delay["blob"] = 1.5  # the download is in flight while we clear

    async def pull_while_clearing() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            download = asyncio.create_task(
                client.get(f"{pull.base}/blobs/{digest}", headers=pull.headers)
            )
            await asyncio.sleep(0.4)
            cleared = await client.delete(
                f"{server.url}/api/v4/groups/{account.group}/dependency_proxy/cache",
                headers={"PRIVATE-TOKEN": account.token},
            )
            await asyncio.to_thread(server.cli, "cache", "cleanup")
            return await download, cleared

    answer, cleared = asyncio.run(pull_while_clearing())
    assert cleared.status_code == 202
    assert answer.status_code == 200 and answer.content == layer
    hex_digest = digest.split(":", 1)[1]
    path = server.data_dir / "blobs" / "sha256" / hex_digest[:2] / hex_digest
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hex_digest
    assert spool_is_empty(server)
    # The cleared manifest is fetched again; the blob the pull re-recorded is a hit.
    assert pull.manifest("1").headers["X-Cache"] == "MISS"
    assert pull.blob(digest).content == layer


def test_the_lowest_rate_limit_headroom_of_the_hour_reaches_graphql(
    server: DockyardServer, account: Account, fake: FakeUpstream
) -> None:
    fake.add_image("library/counted", "1", [os.urandom(1000)])
    fake.add_image("library/counted", "2", [os.urandom(1000)])
    pull = Puller(server, account, "counted")
    fake.faults.ratelimit = (100, 42)
    assert pull.manifest("1").status_code == 200
    fake.faults.ratelimit = (100, 57)  # later, more headroom: the hour keeps its lowest
    assert pull.manifest("2").status_code == 200
    answer = httpx.post(
        f"{server.url}/api/graphql",
        json={
            "query": "query($path: ID!) { group(fullPath: $path) { dependencyProxyUsage"
            " { nodes { rateLimitRemaining upstreamRequests misses } } } }",
            "variables": {"path": account.group},
        },
        headers={"Authorization": f"Bearer {account.token}"},
        timeout=30,
    )
    nodes = answer.json()["data"]["group"]["dependencyProxyUsage"]["nodes"]
    assert [node["rateLimitRemaining"] for node in nodes if node["upstreamRequests"]] == [42]
    assert sum(node["misses"] for node in nodes) >= 2
