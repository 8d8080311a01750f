"""Clearing a group's cache in chunks, with its progress in the database.

A clear marks every row the group held when it was asked for (ids up to
`upto`) PENDING_DESTRUCTION, at most CHUNK_ROWS rows per short transaction,
walking the `(group_id, id)` index with a cursor; between chunks it pauses,
so pulls of every group get the database in between. The progress row
(`CacheClear`) lets any page or query show "N of M marked", and its lease
lets the cleanup worker finish a clear whose process died.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from app import clock
from app.dependency_proxy import sql
from app.dependency_proxy.cache_totals import totals_of
from app.dependency_proxy.models import Blob, CacheClear, CacheStatus, ClearState, Manifest

# SQLite has one writer at a time: short chunks, so a pull waits behind one at
# most. PostgreSQL locks rows: larger chunks cost other groups nothing.
CHUNK_ROWS = 500
CHUNK_ROWS_POSTGRES = 2000
PAUSE_SECONDS = 0.01  # at most; see sql.pause_after
# A process marking a clear renews this with every chunk; a lease that ran
# out belongs to a process that died.
LEASE = timedelta(seconds=60)
WAIT_SECONDS = 0.2
# ERROR rows are marked again, so clearing also retries failed deletions;
# rows already on their way out are left alone.
MARKABLE = (CacheStatus.DEFAULT, CacheStatus.ERROR)


@dataclass(frozen=True)
class ClearProgress:
    state: ClearState
    total_count: int
    manifests_marked: int
    blobs_marked: int
    started_at: datetime
    finished_at: datetime | None

    @property
    def marked_count(self) -> int:
        return self.manifests_marked + self.blobs_marked

    @property
    def running(self) -> bool:
        return self.state == ClearState.RUNNING

    @classmethod
    def of(cls, row: CacheClear) -> ClearProgress:
        return cls(
            state=ClearState(row.state),
            # Rows pulled and marked meanwhile can push the count past the estimate.
            total_count=max(int(row.total_count), row.manifests_marked + row.blobs_marked),
            manifests_marked=int(row.manifests_marked),
            blobs_marked=int(row.blobs_marked),
            started_at=row.started_at,
            finished_at=row.finished_at,
        )


async def progress_of(group_id: int) -> ClearProgress | None:
    """The group's latest clear, running or finished; None if it was never cleared."""
    row = await CacheClear.get_or_none(group_id=group_id)
    return ClearProgress.of(row) if row is not None else None


async def _newest_id(model: type[Manifest] | type[Blob], group_id: int) -> int:
    newest = await model.filter(group_id=group_id).order_by("-id").first().values_list("id")
    return int(newest[0]) if newest else 0


async def begin(group_id: int) -> tuple[CacheClear, bool]:
    """Start clearing the group, or widen the clear already running to today's rows.

    Returns the clear and whether this caller holds its lease (must mark it):
    False when another process is marking it already.
    """
    now = clock.now()
    manifest_upto = await _newest_id(Manifest, group_id)
    blob_upto = await _newest_id(Blob, group_id)
    to_mark = (await totals_of(group_id)).markable_count
    fresh: dict[str, Any] = {
        "state": ClearState.RUNNING,
        "total_count": to_mark,
        "manifests_marked": 0,
        "blobs_marked": 0,
        "manifest_upto": manifest_upto,
        "blob_upto": blob_upto,
        "manifest_cursor": 0,
        "blob_cursor": 0,
        "lease_until": now + LEASE,
        "started_at": now,
        "finished_at": None,
    }
    row = await CacheClear.get_or_none(group_id=group_id)
    if row is None:
        try:
            return await CacheClear.create(group_id=group_id, **fresh), True
        except IntegrityError:  # someone asked at the same moment: join theirs
            row = await CacheClear.get(group_id=group_id)
    restarted = await CacheClear.filter(id=row.id, state=ClearState.FINISHED).update(**fresh)
    if not restarted:
        await CacheClear.filter(id=row.id, state=ClearState.RUNNING).update(
            manifest_upto=manifest_upto,
            blob_upto=blob_upto,
            total_count=F("manifests_marked") + (F("blobs_marked") + to_mark),
        )
    await row.refresh_from_db()
    return row, bool(restarted) or await take_lease(row.id)


async def take_lease(clear_id: int) -> bool:
    """Become the process that marks this clear, if the one that did has died."""
    now = clock.now()
    taken = await CacheClear.filter(
        id=clear_id, state=ClearState.RUNNING, lease_until__lt=now
    ).update(lease_until=now + LEASE)
    return bool(taken)


async def _chunk_end(
    model: type[Manifest] | type[Blob], group_id: int, after: int, upto: int
) -> int:
    """The id that ends the next chunk: CHUNK_ROWS rows after `after`, at most `upto`."""
    ids: list[Any] = await (
        model.filter(group_id=group_id, id__gt=after, id__lte=upto)
        .order_by("id")
        .offset((CHUNK_ROWS if sql.is_sqlite() else CHUNK_ROWS_POSTGRES) - 1)
        .limit(1)
        .values_list("id", flat=True)
    )
    return int(ids[0]) if ids else upto


async def _mark(clear: CacheClear, kind: str) -> None:
    """Mark one chunk of manifests or blobs and record it, in one short transaction."""
    model: type[Manifest] | type[Blob] = Manifest if kind == "manifest" else Blob
    cursor = int(getattr(clear, f"{kind}_cursor"))
    upto = int(getattr(clear, f"{kind}_upto"))
    end = await _chunk_end(model, clear.group_id, cursor, upto)  # type: ignore[attr-defined]
    now = clock.now()

    async def chunk() -> int:
        async with in_transaction():
            # The write comes first: SQLite takes its write lock at once
            # instead of failing a read transaction's upgrade later.
            marked = await sql.changed(
                f"UPDATE {model._meta.db_table} SET status = $1, updated_at = $2"
                " WHERE group_id = $3 AND id > $4 AND id <= $5 AND status IN ($6, $7)",
                int(CacheStatus.PENDING_DESTRUCTION),
                now,
                clear.group_id,  # type: ignore[attr-defined]
                cursor,
                end,
                *(int(status) for status in MARKABLE),
            )
            await CacheClear.filter(id=clear.id).update(
                **{
                    f"{kind}s_marked": F(f"{kind}s_marked") + marked,
                    f"{kind}_cursor": end,
                    "lease_until": now + LEASE,
                }
            )
            return marked

    marked = await sql.retry_busy(chunk, "clearing the cache")
    setattr(clear, f"{kind}_cursor", end)
    setattr(clear, f"{kind}s_marked", int(getattr(clear, f"{kind}s_marked")) + marked)


async def step(clear: CacheClear) -> bool:
    """One chunk of work on a leased clear; True once it is finished."""
    if clear.manifest_cursor < clear.manifest_upto:
        await _mark(clear, "manifest")
    elif clear.blob_cursor < clear.blob_upto:
        await _mark(clear, "blob")
    if clear.manifest_cursor < clear.manifest_upto or clear.blob_cursor < clear.blob_upto:
        return False
    # Finish only if nobody widened the clear meanwhile (begin() moves `upto`).
    finished = await CacheClear.filter(
        id=clear.id, manifest_upto=clear.manifest_upto, blob_upto=clear.blob_upto
    ).update(state=ClearState.FINISHED, finished_at=clock.now(), lease_until=None)
    if not finished:
        await clear.refresh_from_db()
        return False
    clear.state = ClearState.FINISHED
    return True


async def run(clear: CacheClear, *, steps: int | None = None) -> bool:
    """Mark chunk after chunk (all of them, or `steps`); True once the clear is finished."""
    done = 0
    while steps is None or done < steps:
        started = time.monotonic()
        if await step(clear):
            return True
        done += 1
        await sql.pause_after(started, PAUSE_SECONDS)
    return False


async def wait_or_run(clear: CacheClear, leased: bool) -> ClearProgress:
    """Finish the clear: mark it here if we hold the lease, else wait for the
    process that does (taking over if it dies)."""
    while True:
        if leased and await run(clear):
            break
        await asyncio.sleep(WAIT_SECONDS)
        await clear.refresh_from_db()
        if clear.state == ClearState.FINISHED:
            break
        leased = await take_lease(clear.id)
    await clear.refresh_from_db()
    return ClearProgress.of(clear)


async def resume_abandoned() -> int:
    """Finish clears whose process died (the cleanup worker calls this); how many."""
    resumed = 0
    for clear in await CacheClear.filter(state=ClearState.RUNNING, lease_until__lt=clock.now()):
        if await take_lease(clear.id):
            await clear.refresh_from_db()
            await run(clear)
            resumed += 1
    return resumed
