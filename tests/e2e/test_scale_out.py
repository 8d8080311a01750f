"""Three `dockyard serve` instances with separate data folders on one PostgreSQL and one
SeaweedFS bucket, the real reference registry (with its token server) upstream:

- ten skopeo clients split across the instances pull a cold image with one large
  layer: the upstream sees exactly one GET of it, every client gets every digest
  right, the bucket holds it once, and no instance keeps a copy on its disk;
- the instance downloading a second cold layer is killed with SIGKILL mid-blob:
  its client and a follower's client on another instance see a cut connection
  with a correct prefix (never wrong or complete-looking bytes), the lease
  lapses, another instance downloads afresh and the others serve the blob, and
  no incomplete upload is left in the bucket; the internal endpoint gives a
  registry client nothing.

`DOCKYARD_E2E_SCALE_MIB` sets the large layer's size (default 64 MiB, which keeps
the module near two minutes on a loaded 2-core machine; 256 MiB is the size the
issue names and the benchmark uses). The killed download's layer is a quarter of
it, at least 64 MiB: at SLOW that is four seconds in flight, enough for a follower
to stream from the holder before the holder is killed mid-blob.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.dependency_proxy.downloads import internal
from tests.e2e.conftest import require
from tests.e2e.test_pull_with_s3 import blob_key, files_on_disk
from tests.e2e.test_pull_with_skopeo import assert_dir_holds
from tests.security.upstream_support import RIGHT, Puller, cache_counts, group_with
from tests.support.dockyard_server import Account, DockyardServer, s3_settings
from tests.support.fixtures import S3_BUCKET, SeededReferenceRegistry
from tests.support.images import MiB, StreamedLayer, push_large_image
from tests.support.postgres import PostgresServer, postgres_bin
from tests.support.reference_registry import RegistryPusher
from tests.support.seaweedfs import SeaweedS3, list_keys, list_uploads
from tests.support.throttled_proxy import ThrottledProxy

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed"),
]

SIZE = int(os.environ.get("DOCKYARD_E2E_SCALE_MIB", "64")) * MiB
KILLED_SIZE = max(64 * MiB, SIZE // 4)
LEASE_SECONDS = 3
FAST = 1 << 40  # the proxy is a pass-through
SLOW = 16 * MiB  # a download that takes a few seconds: time to kill its instance mid-blob
CLIENTS = 10
# A loaded 2-core machine may take long to import and start three servers at once.
STARTUP_SECONDS = 90


@dataclass
class Cluster:
    instances: list[DockyardServer]
    database_url: str
    prefix: str
    proxy: ThrottledProxy
    alice: Account


def _start_all(servers: list[DockyardServer]) -> None:
    with ThreadPoolExecutor(len(servers)) as pool:
        list(pool.map(lambda server: server.start(timeout=STARTUP_SECONDS), servers))


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PostgresServer,
    seaweed: SeaweedS3,
    reference_registry_session: SeededReferenceRegistry,
) -> Iterator[Cluster]:
    database_url = postgres.create_database("scale_out")
    prefix = f"scale-{secrets.token_hex(4)}/"
    env = {
        **s3_settings(seaweed, prefix),
        "DOCKYARD_DATABASE_URL": database_url,
        "DOCKYARD_SECRET_KEY": secrets.token_urlsafe(48),  # the same on every instance
        "DOCKYARD_DOWNLOAD_LEASE_SECONDS": str(LEASE_SECONDS),
        "DOCKYARD_UPSTREAM_READ_TIMEOUT": "15",
        # Access lines, as JSON: a request id is followed from one instance to another.
        "DOCKYARD_LOG_LEVEL": "info",
        "DOCKYARD_LOG_FORMAT": "json",
    }
    with ThrottledProxy(reference_registry_session.port, bytes_per_second=FAST) as proxy:
        servers = [
            DockyardServer(
                tmp_path_factory.mktemp(f"instance{n}"),
                proxy.url,
                env={**env, "DOCKYARD_INSTANCE_NAME": f"node-{n}"},
            )
            for n in range(3)
        ]
        servers[0].cli("migrate")
        try:
            servers[0].start(timeout=STARTUP_SECONDS)  # the first creates root; then the others
            _start_all(servers[1:])
            alice = servers[0].provision("alice", "acme", scopes="read_registry,write_registry")
            yield Cluster(servers, database_url, prefix, proxy, alice)
        finally:
            for server in servers:
                server.stop()


def skopeo_copy(server: DockyardServer, account: Account, reference: str, target: Path) -> None:
    result = subprocess.run(
        [
            require("skopeo"),
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            f"{account.username}:{account.token}",
            f"docker://{server.prefix(account.group)}/{reference}",
            f"dir:{target}",
        ],
        capture_output=True,
        timeout=150,
        check=False,
    )
    assert result.returncode == 0, (server.url, result.stderr.decode())


def layer_downloads(registry: SeededReferenceRegistry, digest: str) -> int:
    """GETs of the blob the upstream answered with its bytes (a 401 token challenge
    before the first one carries none)."""
    return sum(
        1
        for entry in registry.access_log()
        if entry.method == "GET" and entry.path.endswith(f"/blobs/{digest}") and entry.status == 200
    )


def pull_everywhere(cluster: Cluster, reference: str, where: list[int], root: Path) -> list[Path]:
    """`len(where)` skopeo clients at once, client n on instance where[n]."""
    targets = [root / f"client{n}" for n in range(len(where))]
    with ThreadPoolExecutor(len(where)) as pool:
        futures = [
            pool.submit(skopeo_copy, cluster.instances[index], cluster.alice, reference, target)
            for index, target in zip(where, targets, strict=True)
        ]
        for future in futures:
            future.result()
    return targets


def test_ten_clients_on_three_instances_cause_one_upstream_download_of_a_cold_layer(
    cluster: Cluster,
    registry_pusher: RegistryPusher,
    reference_registry: SeededReferenceRegistry,
    seaweed: SeaweedS3,
    tmp_path: Path,
) -> None:
    cluster.proxy.bytes_per_second = FAST
    name = f"scale-{secrets.token_hex(3)}"
    image = push_large_image(registry_pusher, f"library/{name}", "1", size=SIZE, seed=4242)
    reference_registry.reset_counts()

    targets = pull_everywhere(cluster, f"{name}:1", [n % 3 for n in range(CLIENTS)], tmp_path)

    for target in targets:
        assert_dir_holds(target, image)
    layer = image.layers[0]
    assert layer.size >= SIZE
    assert layer_downloads(reference_registry, layer.digest) == 1
    assert layer_downloads(reference_registry, image.config.digest) == 1
    keys = list_keys(seaweed, S3_BUCKET, cluster.prefix)
    assert sorted(keys) == sorted(blob_key(cluster.prefix, blob.digest) for blob in image.blobs)
    assert list_uploads(seaweed, S3_BUCKET, cluster.prefix) == []
    for server in cluster.instances:
        assert files_on_disk(server) == [], server.url


async def _lease_address(database_url: str, digest: str) -> str | None:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchval(
            "SELECT address FROM dependency_proxy_download_leases WHERE digest = $1", digest
        )
    finally:
        await connection.close()


class Reader:
    """A client reading a blob in a thread; keeps what it got and how it ended."""

    def __init__(self, url: str, token: str, headers: dict[str, str] | None = None) -> None:
        self.url, self.token = url, token
        self.headers = headers or {"Authorization": f"Bearer {token}"}
        self.received = bytearray()
        self.error: Exception | None = None
        self.status = 0
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> Reader:
        self._thread.start()
        return self

    def _read(self) -> None:
        try:
            with httpx.stream("GET", self.url, headers=self.headers, timeout=60) as response:
                self.status = response.status_code
                for chunk in response.iter_raw():
                    self.received += chunk
        except Exception as error:  # a cut connection is the expected end here
            self.error = error

    def wait_for(self, size: int, timeout: float = 30.0) -> None:
        for _ in range(int(timeout * 20)):
            if len(self.received) >= size or not self._thread.is_alive():
                break
            time.sleep(0.05)
        assert len(self.received) >= size, (self.status, self.error)

    def join(self, timeout: float = 60.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive()


def assert_internal_endpoint_gives_clients_nothing(
    server: DockyardServer, account: Account, image: str, digest: str
) -> None:
    url = f"{server.url}{internal.PATH}{digest}"
    other = "sha256:" + "0" * 64
    forged = internal.sign("not-the-instance-secret-key-but-long-enough", digest)
    attempts = {
        "no credentials": {},
        "a registry token": {"Authorization": f"Bearer {server.registry_token(account, image)}"},
        "the user's basic auth": {"Authorization": account.basic},
        "a token signed with another key": {"Authorization": f"{internal.SCHEME} {forged}"},
    }
    for what, headers in attempts.items():
        answer = httpx.get(url, headers=headers, timeout=10)
        assert answer.status_code == 401, what
        assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED", what
    # A valid token is bound to its digest: it opens no other blob.
    token = internal.sign(server.env["DOCKYARD_SECRET_KEY"], other)
    answer = httpx.get(url, headers={"Authorization": f"{internal.SCHEME} {token}"}, timeout=10)
    assert answer.status_code == 401


def log_entries(server: DockyardServer, request_id: str) -> list[dict[str, object]]:
    """The server's JSON log lines that carry `request_id`."""
    entries = []
    for line in server.log_path.read_text().splitlines():
        if line.startswith("{") and f'"{request_id}"' in line:
            entry = json.loads(line)
            if entry.get("request_id") == request_id:
                entries.append(entry)
    return entries


def test_a_followers_request_id_reaches_the_downloading_instances_log(
    cluster: Cluster, registry_pusher: RegistryPusher
) -> None:
    """One grep finds a relayed pull on both instances: the follower sends its client's
    request id to the holder's internal endpoint, whose log lines carry it."""
    _, holder_server, follower_server = cluster.instances
    alice, name = cluster.alice, f"traced-{secrets.token_hex(3)}"
    layer = push_large_image(
        registry_pusher, f"library/{name}", "1", size=16 * MiB, seed=99
    ).layers[0]
    path = f"/v2/{alice.group}/dependency_proxy/containers/{name}/blobs/{layer.digest}"
    request_id = f"trace-{secrets.token_hex(6)}"
    cluster.proxy.bytes_per_second = 4 * MiB  # about four seconds in flight
    try:
        holder = Reader(holder_server.url + path, holder_server.registry_token(alice, name)).start()
        holder.wait_for(1 * MiB)
        token = follower_server.registry_token(alice, name)
        headers = {"Authorization": f"Bearer {token}", "X-Request-Id": request_id}
        follower = Reader(follower_server.url + path, token, headers).start()
        follower.wait_for(1 * MiB)  # while the blob still grows: relayed
        holder.join()
        follower.join()
    finally:
        cluster.proxy.bytes_per_second = FAST

    assert follower.error is None and follower.status == 200
    assert "sha256:" + hashlib.sha256(follower.received).hexdigest() == layer.digest
    relayed = [
        entry
        for entry in log_entries(holder_server, request_id)
        if entry["logger"] == "dockyard.access"
    ]
    assert [(entry["path"], entry["status"]) for entry in relayed] == [
        (f"{internal.PATH}{layer.digest}", 200)
    ]
    assert relayed[0]["instance"] == "node-1"
    served = [
        entry
        for entry in log_entries(follower_server, request_id)
        if entry["logger"] == "dockyard.access"
    ]
    assert [(entry["path"], entry["status"], entry["instance"]) for entry in served] == [
        (path, 200, "node-2")
    ]


def test_killing_the_downloading_instance_mid_blob_cuts_its_clients_and_the_others_serve_it(
    cluster: Cluster,
    registry_pusher: RegistryPusher,
    reference_registry: SeededReferenceRegistry,
    seaweed: SeaweedS3,
    tmp_path: Path,
) -> None:
    first, second, third = cluster.instances
    alice = cluster.alice
    name = f"killed-{secrets.token_hex(3)}"
    seed = 777
    image = push_large_image(registry_pusher, f"library/{name}", "1", size=KILLED_SIZE, seed=seed)
    layer = image.layers[0]
    expected = b"".join(StreamedLayer(KILLED_SIZE, seed))
    assert "sha256:" + hashlib.sha256(expected).hexdigest() == layer.digest
    path = f"/v2/{alice.group}/dependency_proxy/containers/{name}/blobs/{layer.digest}"
    reference_registry.reset_counts()
    cluster.proxy.bytes_per_second = SLOW

    holder = Reader(first.url + path, first.registry_token(alice, name)).start()
    holder.wait_for(2 * MiB)
    address = asyncio.run(_lease_address(cluster.database_url, layer.digest))
    assert address == first.url  # the instance asked first leads
    follower = Reader(second.url + path, second.registry_token(alice, name)).start()
    follower.wait_for(1 * MiB)  # a follower's first bytes come while the blob still grows
    assert_internal_endpoint_gives_clients_nothing(first, alice, name, layer.digest)

    assert first.process is not None
    first.process.kill()  # SIGKILL: no clean-up of any kind
    first.process.wait()
    holder.join()
    follower.join()
    cluster.proxy.bytes_per_second = FAST

    for client in (holder, follower):
        assert client.status == 200
        assert client.error is not None  # the connection was cut...
        assert 0 < len(client.received) < layer.size  # ...mid-blob
        assert expected.startswith(bytes(client.received))  # and every byte was right

    targets = pull_everywhere(cluster, f"{name}:1", [1, 2, 1, 2], tmp_path)
    for target in targets:
        assert_dir_holds(target, image)
    # The dead instance's GET and the one that took over: no more.
    assert layer_downloads(reference_registry, layer.digest) == 2
    assert blob_key(cluster.prefix, layer.digest) in list_keys(seaweed, S3_BUCKET, cluster.prefix)
    assert list_uploads(seaweed, S3_BUCKET, cluster.prefix) == []  # the dead upload was aborted
    for server in (second, third):
        assert files_on_disk(server) == [], server.url

    # Back on its feet, the killed instance sweeps what it left on its disk.
    first.start(timeout=STARTUP_SECONDS)
    assert files_on_disk(first) == []


def test_a_refused_group_on_another_instance_never_gets_bytes_of_a_download_in_flight(
    cluster: Cluster,
    registry_pusher: RegistryPusher,
    reference_registry: SeededReferenceRegistry,
) -> None:
    """In-flight downloads are shared between instances; the right to read is not: a
    group the upstream refuses, asking a follower instance, gets 403 and no bytes."""
    first, second, third = cluster.instances
    owner = first.provision(f"olga{secrets.token_hex(2)}", f"team-{secrets.token_hex(2)}")
    authorised = group_with(first, owner, "amy", RIGHT)
    refused_group = group_with(first, owner, "carl", None)  # anonymous: private/ is closed
    repository = f"private/scale-{secrets.token_hex(3)}"
    image = push_large_image(registry_pusher, repository, "1", size=16 * MiB, seed=31337)
    layer = image.layers[0]
    refused = [Puller(server, refused_group, repository) for server in (second, third)]
    reference_registry.reset_counts()
    cluster.proxy.bytes_per_second = 4 * MiB  # about four seconds in flight

    puller = Puller(first, authorised, repository)
    download = Reader(f"{puller.base}/blobs/{layer.digest}", "", puller.headers).start()
    try:
        download.wait_for(1 * MiB)
        for client in refused:  # while instance 1 downloads: followers of it
            for method in ("GET", "HEAD"):
                answer = client.blob(layer.digest, method)
                assert answer.status_code == 403, (client.server.url, method)
                assert len(answer.content) < 1024
        download.join()
    finally:
        cluster.proxy.bytes_per_second = FAST

    assert download.error is None and download.status == 200
    assert "sha256:" + hashlib.sha256(download.received).hexdigest() == layer.digest
    for client in refused:  # and afterwards, with the bytes in the bucket
        assert client.blob(layer.digest).status_code == 403
    assert cache_counts(first, refused_group).blobs == 0
    assert layer_downloads(reference_registry, layer.digest) == 1
