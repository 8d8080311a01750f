"""A live `dockyard serve` that keeps its blobs in S3 (a real SeaweedFS), pulled through
by real clients from the real reference registry: the blob is in the bucket and not
on the instance's disk, Range works, and in redirect mode skopeo, podman and ctr
follow the pre-signed URL."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import require
from tests.e2e.test_pull_with_containerd import assert_content_holds
from tests.e2e.test_pull_with_containerd import pull as ctr_pull
from tests.e2e.test_pull_with_podman import Podman, assert_podman_holds, hex_of
from tests.e2e.test_pull_with_skopeo import assert_dir_holds, copy_to_dir
from tests.support.containerd import Containerd
from tests.support.dockyard_server import Account, DockyardServer, s3_settings
from tests.support.fixtures import S3_BUCKET, SeededReferenceRegistry
from tests.support.images import SeededImages
from tests.support.seaweedfs import SeaweedS3, list_keys

pytestmark = pytest.mark.e2e


def blob_key(prefix: str, digest: str) -> str:
    hex_digest = digest.removeprefix("sha256:")
    return f"{prefix}blobs/sha256/{hex_digest[:2]}/{hex_digest}"


def files_on_disk(server: DockyardServer) -> list[Path]:
    """Blob or spool files in the instance's data folder."""
    return [
        path
        for folder in ("blobs", "spool")
        for path in (server.data_dir / folder).rglob("*")
        if path.is_file()
    ]


@pytest.fixture(scope="module")
def s3_dockyard(
    tmp_path_factory: pytest.TempPathFactory,
    reference_registry_session: SeededReferenceRegistry,
    seaweed: SeaweedS3,
) -> Iterator[DockyardServer]:
    env = s3_settings(seaweed, "streaming/")
    server = DockyardServer(
        tmp_path_factory.mktemp("dockyard-s3"), reference_registry_session.url, env=env
    )
    with server:
        yield server


@pytest.fixture(scope="module")
def redirect_dockyard(
    tmp_path_factory: pytest.TempPathFactory,
    reference_registry_session: SeededReferenceRegistry,
    seaweed: SeaweedS3,
) -> Iterator[DockyardServer]:
    env = s3_settings(seaweed, "redirect/", redirect=True)
    server = DockyardServer(
        tmp_path_factory.mktemp("dockyard-s3-redirect"), reference_registry_session.url, env=env
    )
    with server:
        yield server


@pytest.fixture(scope="module")
def alice(s3_dockyard: DockyardServer) -> Account:
    return s3_dockyard.provision("alice", "acme/platform", scopes="read_registry,write_registry")


@pytest.fixture(scope="module")
def bob(redirect_dockyard: DockyardServer) -> Account:
    return redirect_dockyard.provision("bob", "acme/ci", scopes="read_registry,write_registry")


def test_cold_then_warm_pull_keeps_every_blob_in_the_bucket_and_none_on_disk(
    s3_dockyard: DockyardServer,
    alice: Account,
    seeded_images: SeededImages,
    reference_registry: SeededReferenceRegistry,
    seaweed: SeaweedS3,
    tmp_path: Path,
) -> None:
    image = seeded_images.nginx
    creds = f"alice:{alice.token}"
    copy_to_dir(s3_dockyard, creds, alice.group, "nginx:1.25", tmp_path / "cold")
    assert_dir_holds(tmp_path / "cold", image)
    assert reference_registry.blob_requests(method="GET") == len(image.blobs)

    keys = set(list_keys(seaweed, S3_BUCKET, "streaming/"))
    assert {blob_key("streaming/", blob.digest) for blob in image.blobs} <= keys
    assert files_on_disk(s3_dockyard) == []

    reference_registry.reset_counts()
    copy_to_dir(s3_dockyard, creds, alice.group, "nginx:1.25", tmp_path / "warm")
    assert_dir_holds(tmp_path / "warm", image)
    assert reference_registry.blob_requests(method=None) == 0


def test_readiness_reports_the_bucket(s3_dockyard: DockyardServer) -> None:
    answer = httpx.get(f"{s3_dockyard.url}/-/readiness", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["checks"]["bucket"] == "ok"


def test_a_cached_blob_answers_range_requests_from_the_bucket(
    s3_dockyard: DockyardServer, alice: Account, seeded_images: SeededImages, tmp_path: Path
) -> None:
    image = seeded_images.alpine
    copy_to_dir(s3_dockyard, f"alice:{alice.token}", alice.group, "alpine:3.19", tmp_path / "a")
    layer = max(image.layers, key=lambda blob: blob.size)
    content = (tmp_path / "a" / hex_of(layer.digest)).read_bytes()
    token = s3_dockyard.registry_token(alice, "alpine")
    repository = f"{s3_dockyard.url}/v2/{alice.group}/dependency_proxy/containers/alpine"
    url = f"{repository}/blobs/{layer.digest}"
    headers = {"Authorization": f"Bearer {token}"}

    whole = httpx.get(url, headers=headers, timeout=30)
    assert whole.status_code == 200 and whole.headers["X-Cache"] == "HIT"
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.content == content

    part = httpx.get(url, headers={**headers, "Range": "bytes=10-99"}, timeout=30)
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 10-99/{len(content)}"
    assert part.content == content[10:100]

    tail = httpx.get(url, headers={**headers, "Range": "bytes=-5"}, timeout=30)
    assert tail.status_code == 206 and tail.content == content[-5:]

    beyond = httpx.get(url, headers={**headers, "Range": f"bytes={len(content)}-"}, timeout=30)
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(content)}"


def test_head_of_a_blob_in_the_bucket_agrees_with_get_and_redirect_mode_heads_200(
    s3_dockyard: DockyardServer,
    alice: Account,
    redirect_dockyard: DockyardServer,
    bob: Account,
    seeded_images: SeededImages,
) -> None:
    layer = seeded_images.alpine.layers[0]
    for server, account in ((s3_dockyard, alice), (redirect_dockyard, bob)):
        token = server.registry_token(account, "alpine")
        url = (
            f"{server.url}/v2/{account.group}/dependency_proxy/containers/alpine"
            f"/blobs/{layer.digest}"
        )
        headers = {"Authorization": f"Bearer {token}"}
        httpx.get(url, headers=headers, timeout=30, follow_redirects=True)  # cached now
        head = httpx.head(url, headers=headers, timeout=30)
        get = httpx.get(url, headers=headers, timeout=30)
        assert head.status_code == 200 and head.headers["X-Cache"] == "HIT"
        assert head.headers["Content-Length"] == str(layer.size)
        assert head.headers["Docker-Content-Digest"] == get.headers["Docker-Content-Digest"]
        if server is s3_dockyard:
            volatile = {"date", "x-request-id"}  # per response by design
            assert {k: v for k, v in head.headers.items() if k not in volatile} == {
                k: v for k, v in get.headers.items() if k not in volatile
            }
        else:
            # A pre-signed URL is signed for GET only: HEAD answers here, GET redirects.
            assert get.status_code == 307


def test_redirect_mode_sends_cached_blobs_to_a_presigned_url_that_skopeo_follows(
    redirect_dockyard: DockyardServer,
    bob: Account,
    seeded_images: SeededImages,
    seaweed: SeaweedS3,
    tmp_path: Path,
) -> None:
    image = seeded_images.many_layers
    creds = f"bob:{bob.token}"
    # Cold: the misses stream through Dockyard while they are downloaded.
    copy_to_dir(redirect_dockyard, creds, bob.group, "many-layers:latest", tmp_path / "cold")
    assert_dir_holds(tmp_path / "cold", image)

    blob = image.layers[0]
    token = redirect_dockyard.registry_token(bob, "many-layers")
    answer = httpx.get(
        f"{redirect_dockyard.url}/v2/{bob.group}/dependency_proxy/containers/many-layers"
        f"/blobs/{blob.digest}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 307
    location = answer.headers["Location"]
    assert location.startswith(f"{seaweed.endpoint}/{S3_BUCKET}/redirect/blobs/sha256/")
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=" in location
    fetched = httpx.get(location, timeout=30)  # no credentials of ours: the URL is the key
    assert "sha256:" + hashlib.sha256(fetched.content).hexdigest() == blob.digest

    # Warm: every blob is a redirect now, and skopeo still gets exact bytes.
    copy_to_dir(redirect_dockyard, creds, bob.group, "many-layers:latest", tmp_path / "warm")
    assert_dir_holds(tmp_path / "warm", image)
    assert files_on_disk(redirect_dockyard) == []


def test_redirect_mode_podman_and_containerd_pull_warm_blobs(
    redirect_dockyard: DockyardServer,
    bob: Account,
    seeded_images: SeededImages,
    tmp_path: Path,
) -> None:
    require("podman")
    require("containerd")
    image = seeded_images.alpine
    creds = f"bob:{bob.token}"
    reference = f"{redirect_dockyard.prefix(bob.group)}/alpine:3.19"
    podman = Podman(tmp_path / "podman-cold")
    try:
        podman.pull(reference, creds=creds)  # cold: streamed
    finally:
        podman.close()

    podman = Podman(tmp_path / "podman-warm")
    try:
        assert podman.pull(reference, creds=creds) == hex_of(image.config.digest)
        assert_podman_holds(podman, reference, image)
    finally:
        podman.close()

    daemon = Containerd(tmp_path / "containerd", require("containerd"), require("ctr"))
    daemon.start()
    try:
        ctr_pull(daemon, reference, creds)
        assert_content_holds(daemon, image)
    finally:
        daemon.stop()
    assert os.path.isdir(redirect_dockyard.data_dir)
