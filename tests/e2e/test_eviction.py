"""Size limits for real: skopeo pulls four images through Dockyard from the reference
registry past a small group limit; the eviction pass takes the least recently pulled
one, never the pinned one, and the rest are still served from the cache (issue 13
point 3)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.test_cache_images import stored_file
from tests.e2e.test_pull_with_skopeo import assert_dir_holds, copy_to_dir
from tests.support.dockyard_server import DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import push_large_image
from tests.support.reference_registry import RegistryPusher

pytestmark = pytest.mark.e2e

KIB = 1024


def a_day_earlier(database: Path) -> None:
    """Every pull happened a day earlier, in the same order (past the ten minutes in
    which a pulled image is never evicted)."""
    with sqlite3.connect(database) as connection:
        for table in ("dependency_proxy_manifests", "dependency_proxy_blobs"):
            rows = connection.execute(f"SELECT id, read_at FROM {table}").fetchall()
            for ident, read_at in rows:
                earlier = datetime.fromisoformat(read_at) - timedelta(days=1)
                connection.execute(
                    f"UPDATE {table} SET read_at = ? WHERE id = ?", (earlier.isoformat(" "), ident)
                )


def test_pulls_past_the_group_limit_evict_the_least_recently_pulled_never_the_pinned(
    tmp_path: Path, reference_registry: SeededReferenceRegistry, registry_pusher: RegistryPusher
) -> None:
    names = ("evict-pinned", "evict-first", "evict-second", "evict-third")
    images = {
        name: push_large_image(registry_pusher, f"library/{name}", "1", size=600 * KIB, seed=n)
        for n, name in enumerate(names, start=700)
    }
    server = DockyardServer(
        tmp_path / "dockyard",
        reference_registry.url,
        env={"DOCKYARD_CLEANUP_INTERVAL_SECONDS": "86400"},  # the CLI runs the pass
    )
    server.cli("migrate")
    olga = server.provision("olga", "acme")
    creds = f"olga:{olga.token}"
    with server:
        for name in names:  # in this order: the pinned image is the oldest pull
            copy_to_dir(server, creds, "acme", f"{name}:1", tmp_path / name)
        assert server.cli("cache", "pin", "acme", "evict-pinned:1")["pinned"] is True
        assert server.cli("cache", "limit", "acme", "2MiB") == {
            "group": "acme",
            "size_limit_bytes": 2 * 1024 * KIB,
        }
        # Everything was pulled moments ago: nothing may go yet.
        assert server.cli("cache", "evict", "acme", "--dry-run")["evicted"] == []

        a_day_earlier(server.data_dir / "dockyard.sqlite3")
        dry = server.cli("cache", "evict", "--dry-run")
        assert [(item["image"], item["why"]) for item in dry["evicted"]] == [
            ("evict-first:1", "over group limit 2.00 MiB")
        ]
        done = server.cli("cache", "evict")
        assert [item["image"] for item in done["evicted"]] == ["evict-first:1"]
        assert done["files_deleted"] == 2  # its layer and its config

        first, pinned = images["evict-first"], images["evict-pinned"]
        assert not stored_file(server, first.layers[0].digest).exists()
        for name in ("evict-pinned", "evict-second", "evict-third"):
            assert stored_file(server, images[name].layers[0].digest).exists(), name

        reference_registry.reset_counts()
        again = copy_to_dir(server, creds, "acme", "evict-pinned:1", tmp_path / "pinned-again")
        assert_dir_holds(again, pinned)
        assert reference_registry.blob_requests(method=None) == 0  # still cached
        refetched = copy_to_dir(server, creds, "acme", "evict-first:1", tmp_path / "first-again")
        assert_dir_holds(refetched, first)
        assert reference_registry.blob_requests(first.layers[0].digest) == 1  # it was gone
