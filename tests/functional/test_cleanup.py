"""The cache's life cycle: TTL expiry, clearing, and the deletion pass (files included)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app import clock
from app.accounts import records as accounts
from app.accounts.principal import Principal
from app.config import Settings
from app.dependency_proxy import cleanup, storage
from app.dependency_proxy.cleanup import CleanupResult, run_cleanup_once
from app.dependency_proxy.models import Blob, CacheStatus, ImageTtlGroupPolicy, Manifest
from app.dependency_proxy.services.clear_cache import clear_cache
from app.dependency_proxy.storage import write_blob
from app.dependency_proxy.storage.local import LocalBlobStore
from app.groups import records as groups
from app.groups.models import AccessLevel, Group

START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeDownloads:
    """Stands in for BlobDownloads: which digests are being downloaded right now."""

    running: set[str] = field(default_factory=set)

    async def in_flight_of(self, digests: Sequence[str]) -> set[str]:
        return self.running & set(digests)


@dataclass
class CleanupRuntime:
    """The parts of app.runtime.Runtime the cleanup uses: a real store, fake downloads."""

    settings: Settings
    store: LocalBlobStore
    downloads: FakeDownloads = field(default_factory=FakeDownloads)
    # The size limits' part of the cache (see cleanup.Cache).
    disk_budget: int = 0
    eviction_wanted: asyncio.Event = field(default_factory=asyncio.Event)
    space_needed: int = 0
    usage: tuple[int, int] | None = None

    async def sweep(self) -> None:
        """Nothing to sweep: no spools, no uploads."""


@pytest.fixture
async def runtime(database: Settings) -> AsyncIterator[CleanupRuntime]:
    clock.set_clock(lambda: START)
    yield CleanupRuntime(settings=database, store=LocalBlobStore(database.data_dir))


async def stored_blob(runtime: CleanupRuntime, group: Group, content: bytes) -> Blob:
    digest = "sha256:" + hashlib.sha256(content).hexdigest()

    async def chunks() -> AsyncIterator[bytes]:
        yield content

    if await runtime.store.stat(digest) is None:
        await write_blob(runtime.store, digest, chunks())
    return await Blob.create(
        group_id=group.id, digest=digest, size=len(content), read_at=clock.now()
    )


async def manifest(group: Group, tag: str) -> Manifest:
    return await Manifest.create(
        group_id=group.id,
        file_name=f"alpine:{tag}.json",
        image_name="alpine",
        reference=tag,
        digest="sha256:" + hashlib.sha256(tag.encode()).hexdigest(),
        content_type="application/vnd.oci.image.manifest.v1+json",
        size=10,
        content=b"{}",
        read_at=clock.now(),
        checked_at=clock.now(),
    )


async def owner_of(group: Group) -> Principal:
    user = await accounts.find_user("olga") or await accounts.create_user(
        "olga", "olga@example.com", "olga-password"
    )
    await groups.add_member(group, user, AccessLevel.OWNER)
    return Principal(user=user)


async def test_ttl_expires_entries_not_read_for_ttl_days(runtime: CleanupRuntime) -> None:
    acme = await groups.create_group("acme")
    other = await groups.create_group("other")  # no policy: never expires
    await ImageTtlGroupPolicy.create(group_id=acme.id, enabled=True, ttl=7)
    old_blob = await stored_blob(runtime, acme, b"old layer")
    old_manifest = await manifest(acme, "old")
    await stored_blob(runtime, other, b"other layer")
    clock.set_clock(lambda: START + timedelta(days=2))
    fresh_blob = await stored_blob(runtime, acme, b"fresh layer")

    clock.set_clock(lambda: START + timedelta(days=6, hours=23))
    assert await run_cleanup_once(runtime) == CleanupResult()  # nothing is 7 days old yet

    clock.set_clock(lambda: START + timedelta(days=7, minutes=1))
    result = await run_cleanup_once(runtime)
    assert result == CleanupResult(
        manifests_expired=1, blobs_expired=1, manifests_deleted=1, blobs_deleted=1, files_deleted=1
    )
    assert not await Blob.exists(id=old_blob.id)
    assert not await Manifest.exists(id=old_manifest.id)
    assert await runtime.store.stat(old_blob.digest) is None
    assert await runtime.store.stat(fresh_blob.digest) is not None
    assert await Blob.filter(status=CacheStatus.DEFAULT).count() == 2


async def test_disabled_policy_expires_nothing(runtime: CleanupRuntime) -> None:
    acme = await groups.create_group("acme")
    await ImageTtlGroupPolicy.create(group_id=acme.id, enabled=False, ttl=1)
    await stored_blob(runtime, acme, b"layer")
    clock.set_clock(lambda: START + timedelta(days=400))
    assert await run_cleanup_once(runtime) == CleanupResult()


async def test_file_shared_with_another_group_survives_until_both_clear(
    runtime: CleanupRuntime,
) -> None:
    acme = await groups.create_group("acme")
    other = await groups.create_group("other")
    ours = await stored_blob(runtime, acme, b"shared layer")
    await stored_blob(runtime, other, b"shared layer")
    await manifest(acme, "latest")

    await clear_cache(await owner_of(acme), acme)
    result = await run_cleanup_once(runtime)
    assert (result.manifests_deleted, result.blobs_deleted, result.files_deleted) == (1, 1, 0)
    assert await runtime.store.stat(ours.digest) is not None

    await clear_cache(await owner_of(other), other)
    result = await run_cleanup_once(runtime)
    assert (result.blobs_deleted, result.files_deleted) == (1, 1)
    assert await runtime.store.stat(ours.digest) is None
    assert await Blob.all().count() == 0


async def test_file_of_a_download_in_flight_is_kept(runtime: CleanupRuntime) -> None:
    acme = await groups.create_group("acme")
    blob = await stored_blob(runtime, acme, b"layer")
    await clear_cache(await owner_of(acme), acme)
    runtime.downloads.running.add(blob.digest)
    result = await run_cleanup_once(runtime)
    assert (result.blobs_deleted, result.files_deleted) == (1, 0)
    assert await runtime.store.stat(blob.digest) is not None


async def test_fresh_row_next_to_a_marked_one_keeps_the_file(runtime: CleanupRuntime) -> None:
    """A pull after clearing creates a new DEFAULT row; the cleanup must not take its file."""
    acme = await groups.create_group("acme")
    old = await stored_blob(runtime, acme, b"layer")
    await clear_cache(await owner_of(acme), acme)
    fresh = await stored_blob(runtime, acme, b"layer")
    await run_cleanup_once(runtime)
    assert not await Blob.exists(id=old.id)
    assert await Blob.exists(id=fresh.id, status=CacheStatus.DEFAULT)
    assert await runtime.store.stat(fresh.digest) is not None


async def test_failed_deletion_marks_the_row_error(
    runtime: CleanupRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = await groups.create_group("acme")
    blob = await stored_blob(runtime, acme, b"layer")
    await clear_cache(await owner_of(acme), acme)

    def broken_unlink(path: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(storage.os, "unlink", broken_unlink)
    result = await run_cleanup_once(runtime)
    assert result.failed == 1
    assert (await Blob.get(id=blob.id)).status == CacheStatus.ERROR


async def test_stale_processing_rows_are_retried(runtime: CleanupRuntime) -> None:
    acme = await groups.create_group("acme")
    blob = await stored_blob(runtime, acme, b"layer")
    await Blob.filter(id=blob.id).update(status=CacheStatus.PROCESSING, updated_at=START)
    clock.set_clock(lambda: START + timedelta(hours=2))
    assert (await run_cleanup_once(runtime)).blobs_deleted == 1


def test_cli_cache_clear_and_cleanup(tmp_path: Path) -> None:
    dockyard = str(Path(sys.executable).parent / "dockyard")
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("DOCKYARD_")},
        "DOCKYARD_DATA_DIR": str(tmp_path / "data"),
    }

    def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [dockyard, *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert (result.returncode == 0) is ok, result.stderr
        return result

    cli("migrate")
    cli("group", "create", "acme")
    cleared = json.loads(cli("cache", "clear", "acme", "--json").stdout)
    assert cleared == {"group": "acme", "manifests_marked": 0, "blobs_marked": 0}
    cleaned = json.loads(cli("cache", "cleanup", "--json").stdout)
    assert cleaned["blobs_deleted"] == 0 and cleaned["failed"] == 0
    missing = cli("cache", "clear", "nope", ok=False)
    assert missing.stderr.strip() == "error: group 'nope' not found"


async def test_files_deleted_counts_only_files_that_were_there(runtime: CleanupRuntime) -> None:
    acme = await groups.create_group("acme")
    present = await stored_blob(runtime, acme, b"on disk")
    missing = await stored_blob(runtime, acme, b"lost")
    await runtime.store.delete(missing.digest)  # an operator removed it by hand
    await clear_cache(await owner_of(acme), acme)
    result = await run_cleanup_once(runtime)
    assert (result.blobs_deleted, result.files_deleted) == (2, 1)
    assert await runtime.store.stat(present.digest) is None


async def test_batches_remove_a_file_only_with_its_last_reference(
    runtime: CleanupRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cleanup, "BATCH_SIZE", 3)
    acme = await groups.create_group("acme")
    other = await groups.create_group("other")
    layers = [f"layer {number}".encode() for number in range(7)]
    for content in layers:
        await stored_blob(runtime, acme, content)
    kept = [await stored_blob(runtime, other, content) for content in layers[:2]]
    await manifest(acme, "latest")

    await clear_cache(await owner_of(acme), acme)
    result = await run_cleanup_once(runtime)
    assert (result.manifests_deleted, result.blobs_deleted, result.files_deleted) == (1, 7, 5)
    assert result.failed == 0
    for row in kept:  # other still holds these two
        assert await runtime.store.stat(row.digest) is not None
    assert await Blob.filter(group_id=acme.id).count() == 0
    assert await Blob.filter(group_id=other.id, status=CacheStatus.DEFAULT).count() == 2
