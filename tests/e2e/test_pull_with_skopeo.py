"""`skopeo` pulls through a live Dockyard from the real reference registry."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import require
from tests.support.dockyard_server import Account, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import Image, SeededImages

pytestmark = pytest.mark.e2e


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(
        [require("skopeo"), *args], capture_output=True, timeout=120, check=False
    )
    if check:
        assert result.returncode == 0, result.stderr.decode()
    return result


def inspect_raw(server: DockyardServer, account: Account, reference: str, creds: str = "") -> bytes:
    creds = creds or f"{account.username}:{account.token}"
    return skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        creds,
        f"docker://{server.prefix(account.group)}/{reference}",
    ).stdout


def copy_to_dir(
    server: DockyardServer, creds: str, group: str, reference: str, target: Path, *extra: str
) -> Path:
    skopeo(
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        creds,
        *extra,
        f"docker://{server.prefix(group)}/{reference}",
        f"dir:{target}",
    )
    return target


def assert_dir_holds(target: Path, image: Image) -> None:
    """Every blob skopeo wrote is byte-exact: named by digest, hashing to it."""
    assert (target / "manifest.json").read_bytes() == image.manifest
    for blob in image.blobs:
        path = target / blob.digest.split(":", 1)[1]
        assert path.stat().st_size == blob.size
        assert "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == blob.digest


@pytest.fixture(scope="module")
def alice(dockyard: DockyardServer) -> Account:
    return dockyard.provision("alice", "acme/platform", scopes="read_registry,write_registry")


def test_pull_by_tag_gives_the_exact_manifest_and_blobs(
    dockyard: DockyardServer, alice: Account, seeded_images: SeededImages, tmp_path: Path
) -> None:
    image = seeded_images.alpine
    assert inspect_raw(dockyard, alice, "alpine:3.19") == image.manifest
    copy_to_dir(dockyard, f"alice:{alice.token}", alice.group, "alpine:3.19", tmp_path / "a")
    assert_dir_holds(tmp_path / "a", image)


def test_second_pull_is_served_from_cache(
    dockyard: DockyardServer,
    alice: Account,
    seeded_images: SeededImages,
    reference_registry: SeededReferenceRegistry,
    tmp_path: Path,
) -> None:
    image = seeded_images.nginx  # Docker schema2
    copy_to_dir(dockyard, f"alice:{alice.token}", alice.group, "nginx:1.25", tmp_path / "first")
    first_blob_gets = reference_registry.blob_requests(method="GET")
    assert first_blob_gets == len(image.blobs)

    reference_registry.reset_counts()
    copy_to_dir(dockyard, f"alice:{alice.token}", alice.group, "nginx:1.25", tmp_path / "second")
    assert_dir_holds(tmp_path / "second", image)
    assert reference_registry.blob_requests(method=None) == 0
    # The tag is revalidated with one HEAD; HEADs do not count against Docker Hub limits.
    assert reference_registry.manifest_requests(method="GET") == 0
    assert reference_registry.manifest_requests(method="HEAD") == 1


def test_pull_by_digest_is_verified_and_then_never_revalidated(
    dockyard: DockyardServer,
    alice: Account,
    seeded_images: SeededImages,
    reference_registry: SeededReferenceRegistry,
    tmp_path: Path,
) -> None:
    image = seeded_images.many_layers
    reference = f"many-layers@{image.digest}"
    copy_to_dir(dockyard, f"alice:{alice.token}", alice.group, reference, tmp_path / "d")
    assert_dir_holds(tmp_path / "d", image)
    reference_registry.reset_counts()
    assert inspect_raw(dockyard, alice, reference) == image.manifest
    assert reference_registry.count() == 0


def test_multi_arch_index_stays_multi_arch_and_a_platform_can_be_pulled(
    dockyard: DockyardServer, alice: Account, seeded_images: SeededImages, tmp_path: Path
) -> None:
    index = seeded_images.busybox
    raw = inspect_raw(dockyard, alice, "busybox:1.36")
    assert raw == index.manifest
    assert json.loads(raw)["mediaType"] == "application/vnd.oci.image.index.v1+json"
    arm = index.for_platform("arm64")
    copy_to_dir(
        dockyard,
        f"alice:{alice.token}",
        alice.group,
        "busybox:1.36",
        tmp_path / "arm",
        "--override-arch",
        "arm64",
        "--override-variant",
        arm.platform.variant or "",
    )
    assert_dir_holds(tmp_path / "arm", arm)


def test_docker_manifest_list_is_served_byte_exact(
    dockyard: DockyardServer, alice: Account, seeded_images: SeededImages
) -> None:
    assert inspect_raw(dockyard, alice, "redis:7") == seeded_images.redis.manifest


def test_deploy_token_pulls_in_a_subgroup(
    dockyard: DockyardServer, alice: Account, seeded_images: SeededImages, tmp_path: Path
) -> None:
    deploy = dockyard.cli(
        "deploy-token", "create", "acme", "--name", "ci", "--scopes", "read_registry,write_registry"
    )
    creds = f"{deploy['username']}:{deploy['token']}"
    copy_to_dir(dockyard, creds, alice.group, "alpine:3.19", tmp_path / "deploy")
    assert_dir_holds(tmp_path / "deploy", seeded_images.alpine)


def test_served_from_cache_while_the_upstream_is_down(
    dockyard: DockyardServer,
    alice: Account,
    seeded_images: SeededImages,
    reference_registry: SeededReferenceRegistry,
    tmp_path: Path,
) -> None:
    copy_to_dir(dockyard, f"alice:{alice.token}", alice.group, "alpine:3.19", tmp_path / "warm")
    reference_registry.stop()
    copy_to_dir(dockyard, f"alice:{alice.token}", alice.group, "alpine:3.19", tmp_path / "cold")
    assert_dir_holds(tmp_path / "cold", seeded_images.alpine)
    token = dockyard.registry_token(alice, "alpine")
    answer = httpx.get(
        f"{dockyard.url}/v2/{alice.group}/dependency_proxy/containers/alpine/manifests/3.19",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.headers["X-Cache"] == "STALE"
    assert answer.content == seeded_images.alpine.manifest
    # Nothing cached for this one: a clear error, not a hang.
    failed = skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        f"alice:{alice.token}",
        f"docker://{dockyard.prefix(alice.group)}/large:latest",
        check=False,
    )
    assert failed.returncode != 0
    assert b"503" in failed.stderr
    answer = httpx.get(
        f"{dockyard.url}/v2/{alice.group}/dependency_proxy/containers/large/manifests/latest",
        headers={"Authorization": f"Bearer {dockyard.registry_token(alice, 'large')}"},
        timeout=30,
    )
    assert answer.status_code == 503
    error = answer.json()["errors"][0]
    assert error["code"] == "UNAVAILABLE" and "upstream" in error["message"]


def test_revoked_token_and_wrong_credentials_are_refused(
    dockyard: DockyardServer, seeded_images: SeededImages
) -> None:
    bob = dockyard.provision("bob", "bobs-group", scopes="api")
    assert inspect_raw(dockyard, bob, "alpine:3.19") == seeded_images.alpine.manifest
    dockyard.cli("token", "revoke", "bob", "e2e")
    refused = skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        f"bob:{bob.token}",
        f"docker://{dockyard.prefix(bob.group)}/alpine:3.19",
        check=False,
    )
    assert refused.returncode != 0
    assert b"unauthorized" in refused.stderr.lower() or b"401" in refused.stderr


def test_a_non_member_cannot_pull_from_another_group(
    dockyard: DockyardServer, alice: Account
) -> None:
    carol = dockyard.provision("carol", "carols-group", scopes="api")
    refused = skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        f"carol:{carol.token}",
        f"docker://{dockyard.prefix(alice.group)}/alpine:3.19",
        check=False,
    )
    assert refused.returncode != 0
    # What skopeo prints: the registry's message, the same as for a group that is not there.
    assert (
        f"name unknown: no group '{alice.group}' you can pull from: check the path"
    ).encode() in refused.stderr


def test_a_group_access_token_pulls_in_its_group_and_subgroups_only(
    dockyard: DockyardServer, alice: Account, seeded_images: SeededImages, tmp_path: Path
) -> None:
    """GitLab 16+'s group access token, made with the CLI, used by skopeo with any
    username: it pulls in its group's subgroup, never outside; revoked, it stops."""
    made = dockyard.cli(
        "group-token",
        "create",
        "acme",
        "--name",
        "skopeo",
        "--role",
        "guest",
        "--scopes",
        "read_registry,write_registry",
    )
    assert made["token"].startswith("dygat-")
    creds = f"ci-runner:{made['token']}"  # any username goes, as on GitLab
    copy_to_dir(dockyard, creds, alice.group, "alpine:3.19", tmp_path / "gat")
    assert_dir_holds(tmp_path / "gat", seeded_images.alpine)
    dockyard.provision("dora", "doras-group", scopes="api")
    outside = skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        creds,
        f"docker://{dockyard.prefix('doras-group')}/alpine:3.19",
        check=False,
    )
    assert outside.returncode != 0 and seeded_images.alpine.manifest not in outside.stdout
    dockyard.cli("group-token", "revoke", "acme", "skopeo")
    revoked = skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        creds,
        f"docker://{dockyard.prefix(alice.group)}/alpine:3.19",
        check=False,
    )
    assert revoked.returncode != 0
    assert b"unauthorized" in revoked.stderr.lower() or b"401" in revoked.stderr
