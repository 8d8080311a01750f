"""Cache cleanup: the deletion pass and the TTL expiry (GitLab's two workers in one).

Clearing a cache marks a group's rows; the deletion pass takes marked rows in
batches and deletes them. Then every group with an enabled TTL policy loses
the entries nobody has read for `ttl` days, batch by batch in the same way,
except what its pinned images hold (`pins.py`).
A blob's file is removed only when no row in any group still references the
digest and no download of it is in flight (on any instance: with several,
the download leases in PostgreSQL say which digests are).

Every batch is a few set-based statements on indexes (`status, updated_at,
id` for the oldest marks, `group_id, read_at` for expiry, `digest` for
references), each short, with a pause after each write: the work grows
linearly with the rows, and every other writer (a pull in the server while
the CLI cleans up) gets the database in between. Blob rows are claimed with
one `UPDATE … RETURNING` that moves a batch to PROCESSING (on PostgreSQL its
subquery takes the rows `FOR UPDATE SKIP LOCKED`, so several instances share
the work); a statement that finds SQLite locked by another process is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from app import clock, metrics
from app.dependency_proxy import clearing, sql
from app.dependency_proxy.eviction import (
    Eviction,
    EvictionPlan,
    apply_eviction,
    free_bytes,
    instance_size,
    plan_eviction,
    why,
)
from app.dependency_proxy.models import CacheStatus, ImageTtlGroupPolicy
from app.dependency_proxy.pins import protected_of
from app.dependency_proxy.storage import Removal
from app.dependency_proxy.usage_rollup import UsageRollup, roll_up_usage
from app.instance.services import disk_budget

log = logging.getLogger("dockyard.cleanup")

# SQLite has one writer at a time: short statements, so a pull waits behind
# one at most. PostgreSQL locks rows: larger batches cost other groups nothing.
BATCH_SIZE = 500
BATCH_SIZE_POSTGRES = 2000
PAUSE_SECONDS = 0.01  # at most; see sql.pause_after
REFERENCE_CHECK_SIZE = 250
# A PROCESSING row this old belongs to an instance that died mid-batch: retry it.
STALE_PROCESSING = timedelta(hours=1)
MANIFESTS = "dependency_proxy_manifests"
BLOBS = "dependency_proxy_blobs"
DEFAULT, PENDING, PROCESSING, ERROR = (int(status) for status in CacheStatus)


class FileStore(Protocol):
    async def remove_unused(self, digests: Sequence[str]) -> dict[str, Removal]: ...


class InFlight(Protocol):
    async def in_flight_of(self, digests: Sequence[str]) -> set[str]: ...


class Cache(Protocol):
    """What cleanup uses of the pull-through cache (`cache.PullThroughCache`)."""

    @property
    def store(self) -> FileStore: ...

    @property
    def downloads(self) -> InFlight: ...

    # The size limits' part (`eviction.py`): DOCKYARD_DISK_BUDGET, the full-disk
    # signal of the downloads, and what the last pass measured (for /metrics).
    disk_budget: int
    eviction_wanted: asyncio.Event
    space_needed: int
    usage: tuple[int, int] | None

    async def sweep(self) -> None: ...


@dataclass(frozen=True)
class CleanupResult:
    manifests_expired: int = 0
    blobs_expired: int = 0
    manifests_deleted: int = 0
    blobs_deleted: int = 0
    files_deleted: int = 0  # files that existed and were removed
    failed: int = 0
    images_evicted: int = 0  # size limits (`eviction.py`)
    bytes_evicted: int = 0


async def _write(sql_text: str, *values: Any) -> int:
    """Run an UPDATE or DELETE (again if SQLite is busy); how many rows it changed.

    Then pause as long as it took (at most PAUSE_SECONDS): every other writer,
    a pull in another process included, gets the database between two of ours.
    """
    started = time.monotonic()
    changed = await sql.retry_busy(lambda: sql.changed(sql_text, *values), "cache cleanup")
    await sql.pause_after(started, PAUSE_SECONDS)
    return changed


def batch_size() -> int:
    return BATCH_SIZE if sql.is_sqlite() else BATCH_SIZE_POSTGRES


async def _release_stale_claims(now: datetime) -> None:
    for table in (MANIFESTS, BLOBS):
        await _write(
            f"UPDATE {table} SET status = {PENDING}"
            f" WHERE status = {PROCESSING} AND updated_at < $1",
            now - STALE_PROCESSING,
        )


def _oldest_marked(table: str, lock_rows: bool) -> str:
    """The next batch of marked rows, oldest mark first, on the (status, updated_at, id) index."""
    skip = " FOR UPDATE SKIP LOCKED" if lock_rows else ""
    return sql.ids_in(
        f"SELECT id FROM {table} WHERE status = {PENDING}"
        f" ORDER BY updated_at, id LIMIT {batch_size()}{skip}"
    )


def _expired(table: str, lock_rows: bool, first: int, spared: tuple[str, int] | None = None) -> str:
    """A batch of a group's entries last read before a cutoff, on (group_id, read_at);
    the group and the cutoff are parameters `first` and `first + 1`. `spared`
    (column, count) leaves out the values bound after them: what pins protect.

    read_at is checked again outside the subquery, on the row as it is when it
    is changed (PostgreSQL re-reads a row a pull touched meanwhile), so an entry
    pulled a moment ago stays. An indexed condition out there instead would make
    SQLite walk that whole index rather than the batch's ids.
    """
    group, cutoff = f"${first}", f"${first + 1}"
    skip = " FOR UPDATE SKIP LOCKED" if lock_rows else ""
    kept = ""
    if spared is not None and spared[1]:
        kept = f" AND {spared[0]} NOT IN ({sql.in_list(range(spared[1]), first + 2)})"
    chosen = sql.ids_in(
        f"SELECT id FROM {table} WHERE group_id = {group} AND status = {DEFAULT}"
        f" AND read_at <= {cutoff}{kept} LIMIT {batch_size()}{skip}"
    )
    return f"{chosen} AND read_at <= {cutoff}"


async def _delete_manifests(batch: str, *values: Any) -> int:
    """Manifests live in their rows: deleting them is one statement per batch."""
    deleted = 0
    while True:
        gone = await _write(f"DELETE FROM {MANIFESTS} WHERE {batch}", *values)
        deleted += gone
        if gone < batch_size():
            return deleted


async def delete_manifests(lock_rows: bool) -> int:
    return await _delete_manifests(_oldest_marked(MANIFESTS, lock_rows))


async def _claim_blobs(batch: str, *values: Any) -> list[dict[str, Any]]:
    """Move a batch of blob rows (`batch`: a condition; $1 is now) to PROCESSING; other
    workers skip them. One statement: on SQLite nothing runs between the choice and the
    update; on PostgreSQL the subquery holds the rows locked until then."""
    statement = (
        f"UPDATE {BLOBS} SET status = {PROCESSING}, updated_at = $1"
        f" WHERE {batch} RETURNING id, digest"
    )
    started = time.monotonic()
    rows = await sql.retry_busy(lambda: sql.fetch(statement, clock.now(), *values), "cache cleanup")
    await sql.pause_after(started, PAUSE_SECONDS)
    return rows


async def _still_referenced(digests: list[str]) -> set[str]:
    """Digests some row still uses: any status but PROCESSING (those are being deleted).

    A few hundred digests per query: with thousands, PostgreSQL's planner may
    prefer reading the whole table to as many probes of the `digest` index.
    """
    found: set[str] = set()
    for start in range(0, len(digests), REFERENCE_CHECK_SIZE):
        part = digests[start : start + REFERENCE_CHECK_SIZE]
        rows = await sql.fetch(
            f"SELECT DISTINCT digest FROM {BLOBS}"
            f" WHERE digest IN ({sql.in_list(part, 1)}) AND status <> {PROCESSING}",
            *part,
        )
        found.update(str(row["digest"]) for row in rows)
    return found


@dataclass
class _BlobBatch:
    deleted: int = 0
    files: int = 0
    failed: int = 0


async def _delete_blob_batch(
    rows: list[dict[str, Any]], store: FileStore, downloads: InFlight
) -> _BlobBatch:
    """Files first, then rows: a file that cannot be deleted keeps its rows, marked ERROR."""
    result = _BlobBatch()
    digests = sorted({str(row["digest"]) for row in rows})
    # Downloads first, rows second: a download (on any instance) records its row
    # before it lets go of the digest, so a digest no longer in flight here has
    # its row by the time we look for references. The other order could miss
    # both: no row yet when looked for, no download any more when asked.
    downloading = await downloads.in_flight_of(digests)
    candidates = [digest for digest in digests if digest not in downloading]
    referenced = await _still_referenced(candidates)
    removals = await store.remove_unused([d for d in candidates if d not in referenced])
    result.files = sum(1 for outcome in removals.values() if outcome == Removal.REMOVED)
    broken = {digest for digest, outcome in removals.items() if outcome == Removal.FAILED}
    for digest in sorted(broken):
        log.error("deleting the file of %s failed; its rows are marked ERROR", digest)
    gone = [int(row["id"]) for row in rows if row["digest"] not in broken]
    kept = [int(row["id"]) for row in rows if row["digest"] in broken]
    if gone:
        result.deleted = await _write(
            f"DELETE FROM {BLOBS} WHERE id IN ({sql.in_list(gone, 1)})", *gone
        )
    if kept:
        result.failed = await _write(
            f"UPDATE {BLOBS} SET status = {ERROR} WHERE id IN ({sql.in_list(kept, 1)})", *kept
        )
    return result


async def _delete_blobs(
    store: FileStore, downloads: InFlight, batch: str, *values: Any
) -> _BlobBatch:
    total = _BlobBatch()
    while rows := await _claim_blobs(batch, *values):
        done = await _delete_blob_batch(rows, store, downloads)
        total.deleted += done.deleted
        total.files += done.files
        total.failed += done.failed
    return total


async def delete_blobs(store: FileStore, downloads: InFlight, lock_rows: bool) -> _BlobBatch:
    return await _delete_blobs(store, downloads, _oldest_marked(BLOBS, lock_rows))


async def expire_entries(
    now: datetime, store: FileStore, downloads: InFlight, lock_rows: bool
) -> tuple[int, _BlobBatch]:
    """Delete entries not read for `ttl` days in every group with an enabled policy.

    Expired entries go at once, as marked ones do, rather than being marked
    first: one write per manifest instead of two, and nobody could see the mark.
    """
    manifests, blobs = 0, _BlobBatch()
    policies = await ImageTtlGroupPolicy.filter(enabled=True).values_list("group_id", "ttl")
    for group_id, ttl in policies:
        cutoff = now - timedelta(days=min(ttl, 36500))  # GitLab's TTLs go up to 2**31-1
        pinned = await protected_of(group_id)  # pinned images never expire
        ids, digests = sorted(pinned.manifest_ids), sorted(pinned.blob_digests)
        manifests += await _delete_manifests(
            _expired(MANIFESTS, lock_rows, 1, ("id", len(ids))), group_id, cutoff, *ids
        )
        done = await _delete_blobs(
            store,
            downloads,
            _expired(BLOBS, lock_rows, 2, ("digest", len(digests))),
            group_id,
            cutoff,
            *digests,
        )
        blobs.deleted += done.deleted
        blobs.files += done.files
        blobs.failed += done.failed
    return manifests, blobs


@dataclass(frozen=True)
class EvictionResult:
    plan: EvictionPlan
    evicted: tuple[Eviction, ...] = ()  # what went (the plan less what was pulled meanwhile)
    blobs_released: int = 0
    blobs_deleted: int = 0
    files_deleted: int = 0
    failed: int = 0


async def evict_over_limits(
    cache: Cache, *, group_id: int | None = None, dry_run: bool = False
) -> EvictionResult:
    """The size limits' pass (`eviction.py`): plan, evict, then delete the released
    rows and unused files at once, so the space is really free when it returns."""
    now = clock.now()
    budget = await disk_budget(cache.disk_budget)
    needed, cache.space_needed = cache.space_needed, 0
    cache.eviction_wanted.clear()
    shortfall = 0
    if needed and group_id is None:
        # A bucket's quota cannot be asked: free what the download needed.
        spool = getattr(cache.store, "spool_dir", None)
        if isinstance(spool, Path) and getattr(cache.store, "keeps_files", False):
            shortfall = max(0, needed - free_bytes(spool))
        else:
            shortfall = needed
    plan = await plan_eviction(
        now, cache.downloads.in_flight_of, budget=budget, group_id=group_id, space_needed=shortfall
    )
    if dry_run or not plan.evictions:
        cache.usage = (await instance_size(), budget)
        return EvictionResult(plan)
    evicted, released = await apply_eviction(plan, now)
    blobs = await delete_blobs(cache.store, cache.downloads, not sql.is_sqlite())
    for item in evicted:
        metrics.evicted_images.labels(item.reason).inc()
        metrics.evicted_bytes.labels(item.reason).inc(item.size_bytes)
    for item in evicted:
        log.info(
            "evicted %s from %s (%d bytes, last pulled %s): %s",
            item.image,
            item.group_path,
            item.size_bytes,
            item.last_pulled.isoformat(),
            why(item),
        )
    cache.usage = (await instance_size(), budget)
    return EvictionResult(plan, tuple(evicted), released, blobs.deleted, blobs.files, blobs.failed)


async def run_cleanup_once(cache: Cache) -> CleanupResult:
    """Finish abandoned clears, delete everything marked, then what the TTL policies expire,
    then sweep what dead writers left (spool files, incomplete uploads), then roll
    usage over time up into days and drop what is past its retention (`usage_rollup.py`).

    Marked rows go first, so the expiry's index walk does not step over them.
    """
    now = clock.now()
    lock_rows = not sql.is_sqlite()  # SQLite has one writer anyway
    store, downloads = cache.store, cache.downloads
    await clearing.resume_abandoned()
    await _release_stale_claims(now)
    manifests_deleted = await delete_manifests(lock_rows)
    blobs = await delete_blobs(store, downloads, lock_rows)
    manifests_expired, expired = await expire_entries(now, store, downloads, lock_rows)
    evicted = await evict_over_limits(cache)
    await cache.sweep()
    rollup = await roll_up_usage(now)
    if rollup != UsageRollup():
        log.info("usage rollup: %s", rollup)
    return CleanupResult(
        manifests_expired=manifests_expired,
        blobs_expired=expired.deleted + expired.failed,
        manifests_deleted=manifests_deleted + manifests_expired,
        blobs_deleted=blobs.deleted + expired.deleted + evicted.blobs_deleted,
        files_deleted=blobs.files + expired.files + evicted.files_deleted,
        failed=blobs.failed + expired.failed + evicted.failed,
        images_evicted=len(evicted.evicted),
        bytes_evicted=sum(item.size_bytes for item in evicted.evicted),
    )


async def run_cleanup_forever(cache: Cache, interval_seconds: float) -> None:
    """Started by the lifespan: cleans up every interval, forever, and at once when a
    download found the disk full (the eviction pass makes room)."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(cache.eviction_wanted.wait(), interval_seconds)
        try:
            result = await run_cleanup_once(cache)
        except Exception:  # keep the worker alive; the next round retries
            log.exception("cache cleanup failed")
            continue
        if result != CleanupResult():
            log.info("cache cleanup: %s", result)
