"""Group totals come from counters the database keeps: they must always equal a real
COUNT and SUM of the rows, through every way rows come and go."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app import clock
from app.accounts.models import User, UserState
from app.accounts.principal import Principal
from app.config import Settings
from app.dependency_proxy.cache_totals import CacheTotals, recount, totals_of
from app.dependency_proxy.cleanup import run_cleanup_once
from app.dependency_proxy.models import (
    Blob,
    CacheStatus,
    GroupCacheTotals,
    ImageTtlGroupPolicy,
    Manifest,
)
from app.dependency_proxy.services.clear_cache import clear_cache
from app.dependency_proxy.services.get_blob import record_blob
from app.dependency_proxy.storage.local import LocalBlobStore
from app.groups import records as groups
from app.groups.models import Group
from tests.functional.test_cleanup import CleanupRuntime
from tests.support.cache_rows import add_blob, add_manifest, digest_of

START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
ADMIN = Principal(user=User(username="ops", is_admin=True, state=UserState.ACTIVE))
LEAVING = (CacheStatus.PENDING_DESTRUCTION, CacheStatus.PROCESSING)


async def counted(group: Group) -> CacheTotals:
    """The totals the slow way: every row of the group."""
    manifests = await Manifest.filter(group_id=group.id).values_list("size", "status")
    blobs = await Blob.filter(group_id=group.id).values_list("size", "status")
    return CacheTotals(
        manifest_count=len(manifests),
        manifest_bytes=sum(size for size, _ in manifests),
        manifests_leaving=sum(1 for _, status in manifests if status in LEAVING),
        blob_count=len(blobs),
        blob_bytes=sum(size for size, _ in blobs),
        blobs_leaving=sum(1 for _, status in blobs if status in LEAVING),
    )


async def assert_right(*found: Group) -> None:
    for group in found:
        assert await totals_of(group.id) == await counted(group), group.full_path


async def test_totals_follow_every_change_of_the_rows(database: Settings) -> None:
    clock.set_clock(lambda: START)
    acme = await groups.create_group("acme")
    other = await groups.create_group("other")
    runtime = CleanupRuntime(settings=database, store=LocalBlobStore(database.data_dir))
    await ImageTtlGroupPolicy.create(group_id=acme.id, enabled=True, ttl=7)

    # What pulls write: manifests by tag and digest, blob rows recorded once per group.
    tag = await add_manifest(acme, "alpine", "3.20", size=700)
    await add_manifest(acme, "alpine", digest_of("x"), size=300)
    await record_blob(acme.id, digest_of("layer"), 5000)
    await record_blob(acme.id, digest_of("layer"), 5000)  # idempotent: still one row
    await record_blob(other.id, digest_of("layer"), 5000)
    await add_blob(other, "other layer", size=123)
    await Manifest.bulk_create(
        [
            Manifest(
                group_id=acme.id,
                file_name=f"busybox:{index}.json",
                image_name="busybox",
                reference=str(index),
                digest=digest_of(f"busybox {index}"),
                content_type="application/vnd.oci.image.manifest.v1+json",
                size=10 + index,
                content=b"{}",
                read_at=START,
                checked_at=START,
            )
            for index in range(5)
        ]
    )
    await assert_right(acme, other)
    assert (await totals_of(acme.id)).manifest_count == 7

    # A tag whose upstream digest changed is stored again in its row: a new size.
    await Manifest.filter(id=tag.id).update(size=900, digest=digest_of("new"))
    await Manifest.filter(id=tag.id).update(read_at=START + timedelta(hours=1))  # a touch
    await assert_right(acme, other)

    # TTL expiry marks what was not read for a week, cleanup deletes it.
    clock.set_clock(lambda: START + timedelta(days=8))
    await add_blob(acme, "fresh layer", size=77)
    await run_cleanup_once(runtime)
    await assert_right(acme, other)
    assert (await totals_of(acme.id)) == CacheTotals(blob_count=1, blob_bytes=77)

    # Clearing marks (the rows still count, as leaving), cleanup deletes.
    await clear_cache(ADMIN, other)
    await assert_right(acme, other)
    assert (await totals_of(other.id)).leaving_count == 2
    await run_cleanup_once(runtime)
    await assert_right(acme, other)
    assert await totals_of(other.id) == CacheTotals()


async def test_recount_repairs_totals_and_says_what_was_wrong(database: Settings) -> None:
    acme = await groups.create_group("acme")
    await add_blob(acme, "layer", size=1000)
    right = await recount(acme.id)
    assert right.was_right and right.counted.blob_bytes == 1000

    await GroupCacheTotals.filter(group_id=acme.id).update(blob_count=42, blob_bytes=1)
    wrong = await recount(acme.id)
    assert not wrong.was_right
    assert (wrong.stored.blob_count, wrong.counted.blob_count) == (42, 1)
    await assert_right(acme)


async def test_a_group_without_rows_has_zero_totals(database: Settings) -> None:
    empty = await groups.create_group("empty")
    assert await totals_of(empty.id) == CacheTotals()
    assert (await recount(empty.id)).counted == CacheTotals()


def test_cli_recount(tmp_path: Path) -> None:
    dockyard = str(Path(sys.executable).parent / "dockyard")
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("DOCKYARD_")},
        "DOCKYARD_DATA_DIR": str(tmp_path / "data"),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [dockyard, *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result

    cli("migrate")
    cli("group", "create", "acme")
    cli("group", "create", "acme/ci")
    answer = json.loads(cli("cache", "recount", "--json").stdout)
    assert answer == {"groups": 2, "corrected": []}
    assert "recounted 1 group; 0 had wrong totals" in cli("cache", "recount", "acme/ci").stdout
