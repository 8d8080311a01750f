"""containerd's `ctr` pulls through a live Dockyard from the real reference registry.

Each test starts its own containerd (own socket, root and state folders, CRI
plugin off; see :mod:`tests.support.containerd`), so its content store starts
empty and every blob comes over the wire from Dockyard. `ctr` resolves and
fetches client-side with containerd's own resolver: it asks the token endpoint
with the POST form first, and verifies every digest it writes to the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import require
from tests.support.containerd import Containerd
from tests.support.dockyard_server import Account, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, Image, SeededImages

pytestmark = pytest.mark.e2e

NewContainerd = Callable[[], Containerd]


@pytest.fixture(scope="module", autouse=True)
def tools_installed() -> None:
    """Skip before a Dockyard is started for nothing."""
    require("containerd")
    require("ctr")


@pytest.fixture(scope="module")
def alice(dockyard: DockyardServer) -> Account:
    return dockyard.provision("alice", "acme/platform", scopes="read_registry,write_registry")


@pytest.fixture
def new_containerd(tmp_path: Path) -> Iterator[NewContainerd]:
    """Starts containerd daemons with empty stores; all are stopped afterwards."""
    containerd_binary, ctr_binary = require("containerd"), require("ctr")
    started: list[Containerd] = []

    def start() -> Containerd:
        daemon = Containerd(
            tmp_path / f"containerd-{len(started) + 1}", containerd_binary, ctr_binary
        )
        started.append(daemon)
        daemon.start()
        return daemon

    try:
        yield start
    finally:
        for daemon in started:
            daemon.stop()


def pull(daemon: Containerd, reference: str, creds: str, platform: str = "linux/amd64") -> None:
    """`ctr images pull`: fetch, then unpack into a snapshot.

    The seeded single-platform images are linux/amd64; naming the platform keeps
    containerd from refusing them on a host of another architecture.
    """
    daemon.ctr(
        "images",
        "pull",
        "--plain-http",
        "--user",
        creds,
        # The native snapshotter unpacks with a bind mount: it works wherever
        # overlayfs does not (overlay on overlay, for one).
        "--snapshotter",
        "native",
        "--platform",
        platform,
        reference,
    )


def fetch(daemon: Containerd, reference: str, creds: str, *extra: str) -> None:
    """`ctr content fetch`: the image record and its content, nothing unpacked."""
    daemon.ctr("content", "fetch", "--plain-http", "--user", creds, *extra, reference)


def assert_content_holds(daemon: Containerd, image: Image) -> None:
    """The manifest and every blob are in the store, byte-exact."""
    assert {image.digest, *(blob.digest for blob in image.blobs)} <= daemon.content_digests()
    assert daemon.content(image.digest) == image.manifest
    for blob in image.blobs:
        data = daemon.content(blob.digest)
        assert len(data) == blob.size
        assert "sha256:" + hashlib.sha256(data).hexdigest() == blob.digest


@pytest.fixture
def creds(alice: Account) -> str:
    return f"{alice.username}:{alice.token}"


def test_pull_by_tag_stores_the_seeded_manifest_and_every_layer(
    dockyard: DockyardServer,
    alice: Account,
    creds: str,
    seeded_images: SeededImages,
    new_containerd: NewContainerd,
) -> None:
    image = seeded_images.alpine
    daemon = new_containerd()
    reference = f"{dockyard.prefix(alice.group)}/alpine:3.19"
    pull(daemon, reference, creds)
    assert daemon.image_target(reference) == (image.media_type, image.digest)
    assert_content_holds(daemon, image)


def test_the_token_comes_from_the_post_form_of_the_token_endpoint(
    dockyard: DockyardServer,
    alice: Account,
    creds: str,
    seeded_images: SeededImages,
    new_containerd: NewContainerd,
) -> None:
    """containerd POSTs (OAuth2 password grant) first and falls back to GET only
    on a 401/404/405: no GET in the dump proves the POST form was accepted."""
    daemon = new_containerd()
    reference = f"{dockyard.prefix(alice.group)}/alpine:3.19"
    dump = daemon.ctr(
        "content", "fetch", "--http-dump", "--plain-http", "--user", creds, reference
    ).stderr
    assert 'msg="POST /jwt/auth HTTP/1.1"' in dump
    assert "grant_type=password" in dump
    assert "GET /jwt/auth" not in dump
    assert daemon.image_target(reference) == (OCI_MANIFEST, seeded_images.alpine.digest)


def test_one_platform_of_a_multi_arch_index_is_fetched_without_unpacking(
    dockyard: DockyardServer,
    alice: Account,
    creds: str,
    seeded_images: SeededImages,
    new_containerd: NewContainerd,
) -> None:
    index = seeded_images.busybox
    daemon = new_containerd()
    reference = f"{dockyard.prefix(alice.group)}/busybox:1.36"
    fetch(daemon, reference, creds, "--platform", "linux/arm64")
    assert daemon.image_target(reference) == (OCI_INDEX, index.digest)
    assert daemon.content(index.digest) == index.manifest
    assert_content_holds(daemon, index.for_platform("arm64"))
    amd = index.for_platform("amd64")
    assert not {amd.digest, *(blob.digest for blob in amd.blobs)} & daemon.content_digests()


def test_docker_manifest_list_is_fetched_byte_exact(
    dockyard: DockyardServer,
    alice: Account,
    creds: str,
    seeded_images: SeededImages,
    new_containerd: NewContainerd,
) -> None:
    manifest_list = seeded_images.redis
    daemon = new_containerd()
    reference = f"{dockyard.prefix(alice.group)}/redis:7"
    fetch(daemon, reference, creds, "--platform", "linux/amd64")
    assert daemon.image_target(reference) == (DOCKER_MANIFEST_LIST, manifest_list.digest)
    assert daemon.content(manifest_list.digest) == manifest_list.manifest
    assert_content_holds(daemon, manifest_list.for_platform("amd64"))


def test_second_pull_is_served_from_cache(
    dockyard: DockyardServer,
    alice: Account,
    creds: str,
    seeded_images: SeededImages,
    reference_registry: SeededReferenceRegistry,
    new_containerd: NewContainerd,
) -> None:
    image = seeded_images.many_layers  # 20 layers; no other test here pulls it
    repository = f"{dockyard.prefix(alice.group)}/many-layers"
    pull(new_containerd(), f"{repository}:latest", creds)
    assert reference_registry.blob_requests(method="GET") == len(image.blobs)

    # A new containerd has an empty store: every blob comes from Dockyard again.
    reference_registry.reset_counts()
    daemon = new_containerd()
    pull(daemon, f"{repository}:latest", creds)
    assert daemon.image_target(f"{repository}:latest") == (image.media_type, image.digest)
    assert_content_holds(daemon, image)
    assert reference_registry.blob_requests(method=None) == 0
    assert reference_registry.manifest_requests(method="GET") == 0
    assert reference_registry.manifest_requests(method="HEAD") == 1

    # By digest, the upstream is not contacted at all.
    reference_registry.reset_counts()
    daemon = new_containerd()
    pull(daemon, f"{repository}@{image.digest}", creds)
    assert_content_holds(daemon, image)
    assert reference_registry.count() == 0


def test_wrong_credentials_are_refused(
    dockyard: DockyardServer, alice: Account, new_containerd: NewContainerd
) -> None:
    daemon = new_containerd()
    reference = f"{dockyard.prefix(alice.group)}/alpine:3.19"
    refused = daemon.ctr(
        "images",
        "pull",
        "--plain-http",
        "--user",
        f"{alice.username}:not-the-token",
        reference,
        check=False,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "401" in refused.stderr or "unauthorized" in refused.stderr.lower()
    assert reference not in daemon.ctr("images", "ls", "--quiet").stdout.split()
