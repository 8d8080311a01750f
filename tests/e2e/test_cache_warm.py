"""Pre-warm for real (issue 13 point 2): `dockyard cache warm` beside a running server,
against the reference registry, then skopeo pulls what the warm fetched; the
upstream's access log counts every GET."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.test_pull_with_skopeo import assert_dir_holds, copy_to_dir
from tests.support.dockyard_server import DOCKYARD, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import SeededImages

pytestmark = pytest.mark.e2e


def warm(server: DockyardServer, *args: str) -> subprocess.CompletedProcess[str]:
    """`dockyard cache warm ARGS` as an operator runs it, stdout a pipe (not a terminal)."""
    return subprocess.run(
        [DOCKYARD, "cache", "warm", *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_warm_then_skopeo_pull_costs_one_upstream_get_per_blob(
    tmp_path: Path, reference_registry: SeededReferenceRegistry, seeded_images: SeededImages
) -> None:
    alpine, busybox = seeded_images.alpine, seeded_images.busybox
    amd64 = busybox.for_platform("amd64")
    server = DockyardServer(tmp_path / "dockyard", reference_registry.url)
    server.cli("migrate")
    olga = server.provision("olga", "acme")
    bob = server.provision("bob", "beta")
    with server:
        reference_registry.reset_counts()
        job = server.cli("cache", "warm", "acme", "alpine:3.19", "busybox:1.36")

        assert job["state"] == "done" and job["platforms"] == ["linux/amd64"]
        by_image = {image["image"]: image for image in job["images"]}
        assert by_image["alpine:3.19"]["layers_done"] == len(alpine.blobs)
        assert by_image["alpine:3.19"]["bytes_done"] == sum(blob.size for blob in alpine.blobs)
        assert by_image["busybox:1.36"]["layers_total"] == len(amd64.blobs)
        assert all(image["state"] == "done" and not image["error"] for image in job["images"])
        # Only linux/amd64 of the index: each of its blobs once, nothing of arm64.
        for blob in (*alpine.blobs, *amd64.blobs):
            assert reference_registry.blob_requests(blob.digest) == 1
        arm64 = busybox.for_platform("arm64")
        assert all(reference_registry.blob_requests(blob.digest) == 0 for blob in arm64.blobs)

        reference_registry.reset_counts()
        target = copy_to_dir(server, f"olga:{olga.token}", "acme", "alpine:3.19", tmp_path / "a")
        assert_dir_holds(target, alpine)
        assert reference_registry.blob_requests(method=None) == 0  # all from the cache

        # The rows are acme's only: beta's first pull is beta's own, and the stored
        # bytes reach it only after the upstream said yes to beta (a HEAD per blob).
        with sqlite3.connect(server.data_dir / "dockyard.sqlite3") as connection:
            rows = connection.execute(
                "SELECT g.full_path, COUNT(*) FROM dependency_proxy_blobs b "
                "JOIN groups g ON g.id = b.group_id GROUP BY g.full_path"
            ).fetchall()
        assert rows == [("acme", len(alpine.blobs) + len(amd64.blobs))]
        reference_registry.reset_counts()
        target = copy_to_dir(server, f"bob:{bob.token}", "beta", "alpine:3.19", tmp_path / "b")
        assert_dir_holds(target, alpine)
        assert reference_registry.blob_requests(method="GET") == 0
        assert reference_registry.blob_requests(method="HEAD") == len(alpine.blobs)


def test_warm_racing_a_pull_of_the_same_image_fetches_each_blob_once(
    tmp_path: Path, reference_registry: SeededReferenceRegistry, seeded_images: SeededImages
) -> None:
    image = seeded_images.many_layers
    server = DockyardServer(tmp_path / "dockyard", reference_registry.url)
    server.cli("migrate")
    olga = server.provision("olga", "acme")
    with server:
        reference_registry.reset_counts()
        results: dict[str, subprocess.CompletedProcess[str]] = {}
        warming = threading.Thread(
            target=lambda: results.setdefault("warm", warm(server, "acme", "many-layers", "--json"))
        )
        warming.start()
        target = copy_to_dir(
            server, f"olga:{olga.token}", "acme", "many-layers:latest", tmp_path / "pulled"
        )
        warming.join(timeout=180)

        assert results["warm"].returncode == 0, results["warm"].stderr
        assert json.loads(results["warm"].stdout)["state"] == "done"
        assert_dir_holds(target, image)
        for blob in image.blobs:  # whoever came first, the other joined its download
            assert reference_registry.blob_requests(blob.digest) == 1


def test_cli_prints_plain_progress_lines_and_clear_errors(
    tmp_path: Path, reference_registry: SeededReferenceRegistry, seeded_images: SeededImages
) -> None:
    nginx = seeded_images.nginx
    server = DockyardServer(tmp_path / "dockyard", reference_registry.url)
    server.cli("migrate")
    server.provision("olga", "acme")

    done = warm(server, "acme", "nginx:1.25")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "\x1b" not in done.stdout  # no terminal: no redrawing
    assert lines[0].startswith("warm job ") and lines[0].endswith(" for acme queued")
    total = sum(blob.size for blob in nginx.blobs)
    assert any(
        line.startswith(f"nginx:1.25: done, {len(nginx.blobs)}/{len(nginx.blobs)} layers")
        for line in lines
    )
    assert any(f"/{total / 1024:.1f} KiB" in line or f"/{total} B" in line for line in lines)
    assert lines[-1].endswith(" done")

    missing = warm(server, "acme", "no-such-image:1.0", "--json")
    assert missing.returncode == 1
    failed = json.loads(missing.stdout)
    assert failed["state"] == "failed"
    assert "does not exist" in failed["images"][0]["error"]
    assert missing.stderr.startswith("error: warm job")
    assert "not warmed: no-such-image:1.0" in missing.stderr

    for bad, message in (
        ("Bad Name!", "is not an image reference"),
        ("ghcr.io/owner/tool:1", "has no upstream for ghcr.io"),
    ):
        refused = warm(server, "acme", bad)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    wrong_platform = warm(server, "acme", "nginx:1.25", "--platform", "amd64")
    assert wrong_platform.returncode == 1 and "is not a platform" in wrong_platform.stderr


def test_a_job_left_running_by_a_dead_process_is_finished_after_a_restart(
    tmp_path: Path, reference_registry: SeededReferenceRegistry, seeded_images: SeededImages
) -> None:
    nginx = seeded_images.nginx
    server = DockyardServer(tmp_path / "dockyard", reference_registry.url)
    server.cli("migrate")
    server.provision("olga", "acme")
    # What a process killed mid-job leaves: RUNNING, half done, its lease run out
    # (stamped as Tortoise writes them: ISO with the offset).
    now = datetime.now(UTC)
    started, lapsed = (now - timedelta(minutes=5)).isoformat(" "), (now - timedelta(minutes=1))
    database = server.data_dir / "dockyard.sqlite3"
    with sqlite3.connect(database) as connection:
        (group_id,) = connection.execute("SELECT id FROM groups WHERE path = 'acme'").fetchone()
        job_id = connection.execute(
            "INSERT INTO dependency_proxy_warm_jobs (group_id, state, platforms, all_platforms, "
            "created_by, holder, lease_until, created_at, started_at) "
            "VALUES (?, 1, 'linux/amd64', 0, 'operator', 'dead', ?, ?, ?)",
            (group_id, lapsed.isoformat(" "), started, started),
        ).lastrowid
        connection.execute(
            "INSERT INTO dependency_proxy_warm_job_images (job_id, position, image, reference, "
            "state, layers_total, layers_done, bytes_total, bytes_done) "
            "VALUES (?, 0, 'nginx', '1.25', 1, 3, 1, 100, 40)",
            (job_id,),
        )

    with server:  # its worker looks every DOCKYARD_WARM_POLL_SECONDS (2)
        deadline = time.monotonic() + 60
        state = None
        while time.monotonic() < deadline:
            with sqlite3.connect(database) as connection:
                (state,) = connection.execute(
                    "SELECT state FROM dependency_proxy_warm_jobs WHERE id = ?", (job_id,)
                ).fetchone()
            if state in (2, 3):
                break
            time.sleep(0.5)

    assert state == 2  # done
    with sqlite3.connect(database) as connection:
        image = connection.execute(
            "SELECT state, layers_total, layers_done, bytes_total, bytes_done, error "
            "FROM dependency_proxy_warm_job_images WHERE job_id = ?",
            (job_id,),
        ).fetchone()
        holder = connection.execute(
            "SELECT holder FROM dependency_proxy_warm_jobs WHERE id = ?", (job_id,)
        ).fetchone()[0]
    total = sum(blob.size for blob in nginx.blobs)
    assert image == (2, len(nginx.blobs), len(nginx.blobs), total, total, None)
    assert holder != "dead"
    for blob in nginx.blobs:
        assert reference_registry.blob_requests(blob.digest) == 1
