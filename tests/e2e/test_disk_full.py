"""A full disk for real: Dockyard's data folder on a 16 MiB tmpfs, serving from the
reference registry. A layer bigger than the free space fails cleanly for every
client (503 UNAVAILABLE saying the cache is out of disk space, a log line),
nothing partial stays, cached images keep being served, and the eviction pass
that the failure starts frees room so the next pull succeeds (issue 13 point 3).

Needs root (or CAP_SYS_ADMIN) to mount the tmpfs; skipped where mount is refused.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_pull_with_skopeo import assert_dir_holds, copy_to_dir
from tests.support.dockyard_server import Account, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import MiB, push_large_image
from tests.support.reference_registry import RegistryPusher

pytestmark = pytest.mark.e2e

OUT_OF_SPACE = "the cache is out of disk space"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "data"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def blob_get(server: DockyardServer, account: Account, image: str, digest: str) -> httpx.Response:
    token = server.registry_token(account, image)
    return httpx.get(
        f"{server.url}/v2/{account.group}/dependency_proxy/containers/{image}/blobs/{digest}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def stored(data_dir: Path, digest: str) -> bool:
    hex_digest = digest.split(":", 1)[1]
    return (data_dir / "blobs" / "sha256" / hex_digest[:2] / hex_digest).exists()


def age(database: Path, image: str, blobs: list[str]) -> None:
    """Make `image`'s rows (its manifest's, its blobs') look pulled a day ago, stamped
    as Tortoise stamps them."""
    day_ago = (datetime.now(UTC) - timedelta(days=1)).isoformat(" ")
    with sqlite3.connect(database) as connection:
        connection.execute(
            "UPDATE dependency_proxy_manifests SET read_at = ? WHERE image_name = ?",
            (day_ago, image),
        )
        for digest in blobs:
            connection.execute(
                "UPDATE dependency_proxy_blobs SET read_at = ? WHERE digest = ?", (day_ago, digest)
            )
        assert connection.total_changes == 1 + len(blobs)


def test_a_full_disk_fails_the_download_cleanly_and_eviction_makes_room(
    tmp_path: Path,
    small_disk: Path,
    reference_registry: SeededReferenceRegistry,
    registry_pusher: RegistryPusher,
) -> None:
    old = push_large_image(registry_pusher, "library/fill-old", "1", size=6 * MiB, seed=901)
    kept = push_large_image(registry_pusher, "library/fill-kept", "1", size=6 * MiB, seed=902)
    big = push_large_image(registry_pusher, "library/too-big", "1", size=7 * MiB, seed=903)
    database = tmp_path / "db" / "dockyard.sqlite3"
    database.parent.mkdir()
    server = DockyardServer(
        tmp_path / "dockyard",
        reference_registry.url,
        env={
            "DOCKYARD_DATA_DIR": str(small_disk),
            "DOCKYARD_DATABASE_URL": f"sqlite://{database}",
            "DOCKYARD_CLEANUP_INTERVAL_SECONDS": "86400",  # only a full disk wakes it
        },
    )
    server.cli("migrate")
    olga = server.provision("olga", "acme")
    creds = f"olga:{olga.token}"
    with server:
        copy_to_dir(server, creds, "acme", "fill-old:1", tmp_path / "old")
        copy_to_dir(server, creds, "acme", "fill-kept:1", tmp_path / "kept")
        layer = big.layers[0]

        # Three clients ask for the layer at once: one download, three clean errors.
        with ThreadPoolExecutor(3) as pool:
            answers = list(
                pool.map(lambda _: blob_get(server, olga, "too-big", layer.digest), range(3))
            )
        for answer in answers:
            assert answer.status_code == 503, answer.text
            error = answer.json()["errors"][0]
            assert error["code"] == "UNAVAILABLE" and error["message"].startswith(OUT_OF_SPACE)
        assert not stored(small_disk, layer.digest)
        assert [path.name for path in (small_disk / "spool").iterdir()] == []
        with sqlite3.connect(database) as connection:
            rows = connection.execute(
                "SELECT COUNT(*) FROM dependency_proxy_blobs WHERE digest = ?", (layer.digest,)
            ).fetchone()
        assert rows == (0,)
        log = server.log_path.read_text()
        assert f"blob download {layer.digest} failed: out of disk space" in log

        # Cached content is still served from the full disk.
        reference_registry.reset_counts()
        again = copy_to_dir(server, creds, "acme", "fill-kept:1", tmp_path / "kept-again")
        assert_dir_holds(again, kept)
        assert reference_registry.blob_requests(method=None) == 0
        # Both cached images were pulled moments ago: nothing could be evicted.
        assert stored(small_disk, old.layers[0].digest)

        # A day later (as far as the rows say) the older image may go: the next failure
        # wakes the eviction pass at once, which frees what the layer needs.
        age(database, "fill-old", [blob.digest for blob in old.blobs])
        assert blob_get(server, olga, "too-big", layer.digest).status_code == 503
        deadline = time.monotonic() + 60
        while stored(small_disk, old.layers[0].digest):
            assert time.monotonic() < deadline, "the eviction pass did not free the space"
            time.sleep(0.2)
        pulled = copy_to_dir(server, creds, "acme", "too-big:1", tmp_path / "big")
        assert_dir_holds(pulled, big)
        assert stored(small_disk, kept.layers[0].digest)  # pulled recently: kept
