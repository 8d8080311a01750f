"""The reference upstream itself, checked with a real client (skopeo)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support.images import Image, ImageIndex, SeededImages
from tests.support.reference_registry import PullThroughRegistry, RegistryProcess
from tests.support.token_server import PULL_USER, TokenServer

if TYPE_CHECKING:
    from tests.support.fixtures import SeededReferenceRegistry

pytest_plugins = ["tests.support.fixtures"]
pytestmark = pytest.mark.e2e

ALICE = ":".join(PULL_USER)


def skopeo(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["skopeo", "--command-timeout", f"{int(timeout)}s", *args],
        capture_output=True,
        timeout=timeout + 10,
        check=False,
    )


def inspect_raw(
    registry: RegistryProcess, reference: str, creds: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    auth = ["--creds", creds] if creds else ["--no-creds"]
    return skopeo(
        "inspect", "--raw", "--tls-verify=false", *auth, f"docker://{registry.host}/{reference}"
    )


def copy_to_dir(
    registry: RegistryProcess, reference: str, target: Path, *extra: str
) -> subprocess.CompletedProcess[bytes]:
    return skopeo(
        "copy", "--src-tls-verify=false", "--preserve-digests", *extra,
        f"docker://{registry.host}/{reference}", f"dir:{target}",
    )  # fmt: skip


def assert_dir_holds(target: Path, image: Image) -> None:
    """skopeo's dir: layout names blobs by their hex digest."""
    for blob in image.blobs:
        stored = (target / blob.digest.removeprefix("sha256:")).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == blob.digest.removeprefix("sha256:")
        assert len(stored) == blob.size
        if blob.data is not None:
            assert stored == blob.data


@pytest.mark.parametrize("name", ["alpine", "busybox", "redis", "nginx", "many_layers", "large"])
def test_inspect_raw_gives_the_pushed_manifest_bytes(
    reference_registry: SeededReferenceRegistry, name: str
) -> None:
    image: Image | ImageIndex = getattr(reference_registry.seeded, name)
    result = inspect_raw(reference_registry, image.reference)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == image.manifest
    assert "sha256:" + hashlib.sha256(result.stdout).hexdigest() == image.digest
    assert json.loads(result.stdout)["mediaType"] == image.media_type


def test_copy_to_dir_gives_the_recorded_blobs(
    reference_registry: SeededReferenceRegistry, tmp_path: Path
) -> None:
    seeded = reference_registry.seeded
    for image in (seeded.alpine, seeded.nginx, seeded.many_layers, seeded.large):
        target = tmp_path / image.repository.replace("/", "_")
        result = copy_to_dir(reference_registry, image.reference, target, "--src-no-creds")
        assert result.returncode == 0, result.stderr.decode()
        assert (target / "manifest.json").read_bytes() == image.manifest
        assert_dir_holds(target, image)


def test_copy_all_platforms_of_an_index_by_digest(
    reference_registry: SeededReferenceRegistry, tmp_path: Path
) -> None:
    index = reference_registry.seeded.busybox
    result = copy_to_dir(reference_registry, index.by_digest, tmp_path, "--src-no-creds", "--all")
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "manifest.json").read_bytes() == index.manifest
    for child in index.manifests:
        hex_digest = child.digest.removeprefix("sha256:")
        assert (tmp_path / f"{hex_digest}.manifest.json").read_bytes() == child.manifest
        assert_dir_holds(tmp_path, child)
    assert {c.platform.architecture for c in index.manifests} == {"amd64", "arm64"}


def test_private_image_needs_the_pull_user(
    reference_registry: SeededReferenceRegistry, tmp_path: Path
) -> None:
    private = reference_registry.seeded.private
    anonymous = inspect_raw(reference_registry, private.reference)
    assert anonymous.returncode != 0
    assert b"unauthorized" in anonymous.stderr.lower()
    wrong = inspect_raw(reference_registry, private.reference, creds="alice:wrong")
    assert wrong.returncode != 0

    as_alice = inspect_raw(reference_registry, private.reference, creds=ALICE)
    assert as_alice.returncode == 0, as_alice.stderr.decode()
    assert as_alice.stdout == private.manifest
    result = copy_to_dir(reference_registry, private.reference, tmp_path, "--src-creds", ALICE)
    assert result.returncode == 0, result.stderr.decode()
    assert_dir_holds(tmp_path, private)


def test_token_server_answers_like_docker_hub(token_server: TokenServer) -> None:
    params = {"service": "registry.test", "scope": "repository:private/secret:pull,push"}
    anonymous = httpx.get(token_server.realm, params=params).json()
    assert set(anonymous) == {"token", "access_token", "expires_in", "issued_at"}
    assert httpx.get(token_server.realm, params=params, auth=("alice", "nope")).status_code == 401
    assert httpx.get(token_server.realm, params=params, auth=PULL_USER).status_code == 200
    assert [(r.account, r.status) for r in token_server.requests] == [
        ("", 200),
        ("alice", 401),
        ("alice", 200),
    ]


def test_request_counters_count_what_reached_the_upstream(
    reference_registry: SeededReferenceRegistry, token_server: TokenServer, tmp_path: Path
) -> None:
    alpine = reference_registry.seeded.alpine
    result = copy_to_dir(reference_registry, alpine.reference, tmp_path, "--src-no-creds")
    assert result.returncode == 0, result.stderr.decode()

    for blob in alpine.blobs:
        assert reference_registry.blob_requests(blob.digest) == 1
    assert reference_registry.blob_requests() == len(alpine.blobs)
    assert reference_registry.manifest_requests(name=alpine.repository) >= 1
    assert reference_registry.manifest_requests(method="PUT") == 0
    assert token_server.request_count >= 1
    assert all(r.account == "" and r.status == 200 for r in token_server.requests)

    reference_registry.reset_counts()
    token_server.reset()
    assert reference_registry.blob_requests() == 0
    assert token_server.request_count == 0


def test_large_layer_is_a_valid_streamed_tar_gz(
    reference_registry: SeededReferenceRegistry, token_server: TokenServer
) -> None:
    large = reference_registry.seeded.large
    layer = large.layers[0]
    scope = f"repository:{large.repository}:pull"
    params = {"service": "registry.test", "scope": scope}
    token = httpx.get(token_server.realm, params=params).json()["token"]
    compressed, uncompressed = hashlib.sha256(), hashlib.sha256()
    decompressor = zlib.decompressobj(31)
    url = f"{reference_registry.url}/v2/{large.repository}/blobs/{layer.digest}"
    with httpx.stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            compressed.update(chunk)
            uncompressed.update(decompressor.decompress(chunk))
    uncompressed.update(decompressor.flush())
    assert decompressor.eof
    assert "sha256:" + compressed.hexdigest() == layer.digest
    assert "sha256:" + uncompressed.hexdigest() == layer.diff_id
    assert reference_registry.blob_requests(layer.digest) == 1


def test_upstream_stops_and_comes_back_on_the_same_port(
    reference_registry: SeededReferenceRegistry,
) -> None:
    url, alpine = reference_registry.url, reference_registry.seeded.alpine
    reference_registry.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/v2/")
    assert inspect_raw(reference_registry, alpine.reference).returncode != 0

    reference_registry.start()
    assert reference_registry.url == url
    result = inspect_raw(reference_registry, alpine.reference)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == alpine.manifest


def test_failing_token_server_makes_pulls_fail(
    reference_registry: SeededReferenceRegistry, token_server: TokenServer
) -> None:
    token_server.fail_with = 503
    result = inspect_raw(reference_registry, reference_registry.seeded.alpine.reference)
    assert result.returncode != 0
    assert token_server.requests and all(r.status == 503 for r in token_server.requests)


def test_distribution_pull_through_mode_serves_the_reference_images(
    reference_registry: SeededReferenceRegistry,
    pull_through_registry: PullThroughRegistry,
    seeded_images: SeededImages,
    tmp_path: Path,
) -> None:
    private = seeded_images.private
    result = inspect_raw(pull_through_registry, private.reference)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == private.manifest

    alpine = seeded_images.alpine
    copied_before = 0
    for attempt in ("first", "second"):
        target = tmp_path / attempt
        copied = copy_to_dir(pull_through_registry, alpine.reference, target, "--src-no-creds")
        assert copied.returncode == 0, copied.stderr.decode()
        assert (target / "manifest.json").read_bytes() == alpine.manifest
        assert_dir_holds(target, alpine)
        wait_until_stored(pull_through_registry, alpine)
        if attempt == "second":  # served from its own storage
            assert reference_registry.blob_requests() == copied_before
        copied_before = reference_registry.blob_requests()
    # distribution's proxy fetches a missed blob twice from its remote: once
    # for the client, once in the background for its own storage.
    for blob in alpine.blobs:
        assert reference_registry.blob_requests(blob.digest) == 2


def wait_until_stored(registry: RegistryProcess, image: Image, timeout: float = 10.0) -> None:
    """Until the repository links each blob (distribution's last step in storing it)."""
    layers = registry.storage / f"docker/registry/v2/repositories/{image.repository}/_layers"
    deadline = time.monotonic() + timeout
    for blob in image.blobs:
        while not (layers / "sha256" / blob.digest.removeprefix("sha256:") / "link").exists():
            assert time.monotonic() < deadline, f"{blob.digest} never reached storage"
            time.sleep(0.02)


def test_registry_rejects_tokens_past_their_exp_claim(
    reference_registry: SeededReferenceRegistry, token_server: TokenServer
) -> None:
    params = {"service": "registry.test", "scope": "repository:library/alpine:pull"}
    url = f"{reference_registry.url}/v2/library/alpine/manifests/3.19"
    for lifetime, status in ((None, 200), (-61, 401)):
        token_server.claims_lifetime = lifetime
        token = httpx.get(token_server.realm, params=params).json()["token"]
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.oci.image.manifest.v1+json",
        }
        assert httpx.head(url, headers=headers).status_code == status
    assert reference_registry.manifest_requests("3.19", method="HEAD") == 2
