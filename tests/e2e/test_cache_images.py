"""Deleting one image for real: skopeo pulls through two groups from the reference
registry, the CLI deletes the image in one group and runs the cleanup, and the
other group still gets the exact bytes from the cache (issue 13)."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.test_pull_with_skopeo import assert_dir_holds, copy_to_dir
from tests.support.dockyard_server import DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import SeededImages

pytestmark = pytest.mark.e2e


def stored_file(server: DockyardServer, digest: str) -> Path:
    hex_digest = digest.split(":", 1)[1]
    return server.data_dir / "blobs" / "sha256" / hex_digest[:2] / hex_digest


def test_delete_in_one_group_leaves_the_other_groups_copy_pullable(
    tmp_path: Path, reference_registry: SeededReferenceRegistry, seeded_images: SeededImages
) -> None:
    image = seeded_images.alpine
    server = DockyardServer(
        tmp_path / "dockyard",
        reference_registry.url,
        env={"DOCKYARD_CLEANUP_INTERVAL_SECONDS": "86400"},  # the CLI runs it
    )
    server.cli("migrate")
    olga = server.provision("olga", "acme")
    bob = server.provision("bob", "beta")
    with server:
        for account in (olga, bob):
            creds = f"{account.username}:{account.token}"
            target = tmp_path / f"first-{account.group}"
            copy_to_dir(server, creds, account.group, "alpine:3.19", target)
            assert_dir_holds(target, image)

        deleted = server.cli("cache", "delete", "acme", "alpine:3.19")
        assert deleted == {
            "group": "acme",
            "deleted": ["alpine:3.19"],
            "blobs_released": len(image.blobs),
        }
        cleaned = server.cli("cache", "cleanup")
        assert (cleaned["blobs_deleted"], cleaned["files_deleted"]) == (len(image.blobs), 0)
        for blob in image.blobs:  # beta still holds them: the bytes stay
            data = stored_file(server, blob.digest).read_bytes()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == blob.digest

        reference_registry.reset_counts()
        again = tmp_path / "beta-after-delete"
        copy_to_dir(server, f"bob:{bob.token}", "beta", "alpine:3.19", again)
        assert_dir_holds(again, image)
        assert reference_registry.blob_requests(method=None) == 0  # from the cache

        # acme's manifest is gone: its next pull fetches it from the upstream again.
        reference_registry.reset_counts()
        refetched = tmp_path / "acme-after-delete"
        copy_to_dir(server, f"olga:{olga.token}", "acme", "alpine:3.19", refetched)
        assert_dir_holds(refetched, image)
        assert reference_registry.manifest_requests(method="GET") == 1


def test_pinned_image_outlives_the_ttl_policy_after_real_pulls(
    tmp_path: Path, reference_registry: SeededReferenceRegistry, seeded_images: SeededImages
) -> None:
    server = DockyardServer(
        tmp_path / "dockyard",
        reference_registry.url,
        env={"DOCKYARD_CLEANUP_INTERVAL_SECONDS": "86400"},
    )
    server.cli("migrate")
    olga = server.provision("olga", "acme")
    with server:
        creds = f"olga:{olga.token}"
        copy_to_dir(server, creds, "acme", "alpine:3.19", tmp_path / "alpine")
        copy_to_dir(server, creds, "acme", "nginx:1.25", tmp_path / "nginx")
        pinned = server.cli("cache", "pin", "acme", "alpine:3.19")
        assert pinned == {"group": "acme", "images": ["alpine:3.19"], "pinned": True}
    # Everything was last pulled two days ago; the policy keeps one day.
    # Stamped as Tortoise writes them (ISO, with the offset).
    now = datetime.now(UTC)
    two_days_ago, stamp = (now - timedelta(days=2)).isoformat(" "), now.isoformat(" ")
    with sqlite3.connect(server.data_dir / "dockyard.sqlite3") as connection:
        for table in ("dependency_proxy_manifests", "dependency_proxy_blobs"):
            connection.execute(f"UPDATE {table} SET read_at = ?", (two_days_ago,))
        connection.execute(
            "INSERT INTO dependency_proxy_image_ttl_group_policies"
            " (group_id, enabled, ttl, created_at, updated_at)"
            " SELECT id, 1, 1, ?, ? FROM groups WHERE full_path = 'acme'",
            (stamp, stamp),
        )
    cleaned = server.cli("cache", "cleanup")
    nginx = seeded_images.nginx
    assert cleaned["manifests_expired"] == 1
    assert cleaned["files_deleted"] == len(nginx.blobs)
    for blob in seeded_images.alpine.blobs:
        assert stored_file(server, blob.digest).exists()
    with server:
        reference_registry.reset_counts()
        again = tmp_path / "alpine-again"
        copy_to_dir(server, f"olga:{olga.token}", "acme", "alpine:3.19", again)
        assert_dir_holds(again, seeded_images.alpine)
        assert reference_registry.blob_requests(method=None) == 0
