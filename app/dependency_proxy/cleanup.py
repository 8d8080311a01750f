"""Cache cleanup: the TTL expiry pass and the deletion pass (GitLab's two workers in one).

Expiry marks the rows of groups with an enabled TTL policy that nobody has read
for `ttl` days; clearing a cache marks all of a group's rows. The deletion pass
then takes marked rows in batches, deletes them, and removes a blob's file only
when no row in any group still references the digest and no download of it is
in flight. Several instances may run it at once: on PostgreSQL each batch is
claimed with `FOR UPDATE SKIP LOCKED` and moved to PROCESSING before any work.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from tortoise.transactions import in_transaction

from app import clock
from app.dependency_proxy.models import Blob, CacheStatus, ImageTtlGroupPolicy, Manifest

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger("dockyard.cleanup")

BATCH_SIZE = 100
# A PROCESSING row this old belongs to an instance that died mid-batch: retry it.
STALE_PROCESSING = timedelta(hours=1)


class FileStore(Protocol):
    async def delete(self, digest: str) -> None: ...


class InFlight(Protocol):
    def in_flight(self, digest: str) -> bool: ...


@dataclass(frozen=True)
class CleanupResult:
    manifests_expired: int = 0
    blobs_expired: int = 0
    manifests_deleted: int = 0
    blobs_deleted: int = 0
    files_deleted: int = 0
    failed: int = 0


async def expire_entries(now: datetime) -> tuple[int, int]:
    """Mark entries not read for `ttl` days in every group with an enabled policy."""
    manifests = blobs = 0
    marked = {"status": CacheStatus.PENDING_DESTRUCTION, "updated_at": now}
    policies = await ImageTtlGroupPolicy.filter(enabled=True).values_list("group_id", "ttl")
    for group_id, ttl in policies:
        cutoff = now - timedelta(days=ttl)
        manifests += await Manifest.filter(
            group_id=group_id, status=CacheStatus.DEFAULT, read_at__lte=cutoff
        ).update(**marked)
        blobs += await Blob.filter(
            group_id=group_id, status=CacheStatus.DEFAULT, read_at__lte=cutoff
        ).update(**marked)
    return manifests, blobs


async def _claim(model: type[Manifest] | type[Blob], lock_rows: bool) -> list[Any]:
    """Move the next batch of marked rows to PROCESSING; other workers skip them."""
    async with in_transaction() as connection:
        query = (
            model.filter(status=CacheStatus.PENDING_DESTRUCTION)
            .order_by("updated_at", "id")
            .limit(BATCH_SIZE)
            .using_db(connection)
        )
        if lock_rows:
            query = query.select_for_update(skip_locked=True)
        rows = list(await query)
        if rows:
            await (
                model.filter(id__in=[row.pk for row in rows])
                .using_db(connection)
                .update(status=CacheStatus.PROCESSING, updated_at=clock.now())
            )
    return rows


async def _release_stale_claims(now: datetime) -> None:
    for model in (Manifest, Blob):
        await model.filter(
            status=CacheStatus.PROCESSING, updated_at__lt=now - STALE_PROCESSING
        ).update(status=CacheStatus.PENDING_DESTRUCTION)


async def delete_manifests(lock_rows: bool) -> tuple[int, int]:
    """Manifests live in their rows: deleting the row is all there is."""
    deleted = failed = 0
    while rows := await _claim(Manifest, lock_rows):
        ids = [row.id for row in rows]
        try:
            deleted += await Manifest.filter(id__in=ids).delete()
        except Exception:
            log.exception("deleting %d manifests failed", len(ids))
            failed += await Manifest.filter(id__in=ids).update(status=CacheStatus.ERROR)
    return deleted, failed


async def _file_unreferenced(row: Blob, downloads: InFlight) -> bool:
    # Rows being deleted right now (PROCESSING, this one included) are no references.
    others = Blob.filter(digest=row.digest).exclude(id=row.id)
    others = others.exclude(status=CacheStatus.PROCESSING)
    return not await others.exists() and not downloads.in_flight(row.digest)


async def _delete_blob(row: Blob, store: FileStore, downloads: InFlight) -> bool:
    """Delete the file if nothing else references it, then the row. True when the file went.

    The file goes first: if that fails, the row survives and is marked ERROR.
    """
    unreferenced = await _file_unreferenced(row, downloads)
    if unreferenced:
        await store.delete(row.digest)
    await Blob.filter(id=row.id).delete()
    return unreferenced


async def delete_blobs(store: FileStore, downloads: InFlight, lock_rows: bool) -> tuple[int, ...]:
    deleted = files = failed = 0
    while rows := await _claim(Blob, lock_rows):
        for row in rows:
            try:
                files += await _delete_blob(row, store, downloads)
                deleted += 1
            except Exception:
                log.exception("deleting blob row %s (%s) failed", row.id, row.digest)
                await Blob.filter(id=row.id).update(status=CacheStatus.ERROR)
                failed += 1
    return deleted, files, failed


async def run_cleanup_once(runtime: Runtime) -> CleanupResult:
    """One expiry pass, then one deletion pass over everything marked."""
    now = clock.now()
    lock_rows = not runtime.settings.is_sqlite  # SQLite has one writer anyway
    manifests_expired, blobs_expired = await expire_entries(now)
    await _release_stale_claims(now)
    manifests_deleted, manifest_failures = await delete_manifests(lock_rows)
    blobs_deleted, files_deleted, blob_failures = await delete_blobs(
        runtime.store, runtime.downloads, lock_rows
    )
    return CleanupResult(
        manifests_expired=manifests_expired,
        blobs_expired=blobs_expired,
        manifests_deleted=manifests_deleted,
        blobs_deleted=blobs_deleted,
        files_deleted=files_deleted,
        failed=manifest_failures + blob_failures,
    )


async def run_cleanup_forever(runtime: Runtime) -> None:
    """Started by the lifespan: waits one interval, then cleans up, forever."""
    while True:
        await asyncio.sleep(runtime.settings.cleanup_interval_seconds)
        try:
            result = await run_cleanup_once(runtime)
        except Exception:  # keep the worker alive; the next round retries
            log.exception("cache cleanup failed")
            continue
        if result != CleanupResult():
            log.info("cache cleanup: %s", result)
