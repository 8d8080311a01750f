"""Group totals (images, blobs, bytes, rows on their way out) from maintained counters.

Reading them is one indexed row per group, whatever the cache holds: the
database triggers of migration 0002 keep `GroupCacheTotals` right in the
same statements that change the rows. `recount` recomputes them from the
rows themselves (`dockyard cache recount`), for an operator who doubts them
or who changed rows with the triggers disabled.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tortoise.transactions import in_transaction

from app.dependency_proxy import sql
from app.dependency_proxy.models import GroupCacheTotals

COUNTERS = (
    "manifest_count",
    "manifest_bytes",
    "manifests_leaving",
    "blob_count",
    "blob_bytes",
    "blobs_leaving",
)


@dataclass(frozen=True)
class CacheTotals:
    manifest_count: int = 0
    manifest_bytes: int = 0
    manifests_leaving: int = 0
    blob_count: int = 0
    blob_bytes: int = 0
    blobs_leaving: int = 0

    @property
    def total_size_bytes(self) -> int:
        return self.manifest_bytes + self.blob_bytes

    @property
    def leaving_count(self) -> int:
        """Rows pending destruction or being deleted."""
        return self.manifests_leaving + self.blobs_leaving

    @property
    def markable_count(self) -> int:
        """Rows a clear would mark now (every row not already on its way out)."""
        return self.manifest_count + self.blob_count - self.leaving_count


def _of(row: GroupCacheTotals | None) -> CacheTotals:
    if row is None:  # a group that never cached anything has no row yet
        return CacheTotals()
    return CacheTotals(**{name: int(getattr(row, name)) for name in COUNTERS})


async def totals_of(group_id: int) -> CacheTotals:
    return _of(await GroupCacheTotals.get_or_none(group_id=group_id))


async def totals_of_groups(group_ids: Iterable[int]) -> dict[int, CacheTotals]:
    """Totals of several groups in one query (the admin area's page of groups)."""
    wanted = list(group_ids)
    rows = await GroupCacheTotals.filter(group_id__in=wanted) if wanted else []
    found = {int(row.group_id): _of(row) for row in rows}  # type: ignore[attr-defined]
    return {group_id: found.get(group_id, CacheTotals()) for group_id in wanted}


@dataclass(frozen=True)
class Recount:
    group_id: int
    stored: CacheTotals
    counted: CacheTotals

    @property
    def was_right(self) -> bool:
        return self.stored == self.counted


_COUNT = """
SELECT
    (SELECT COUNT(*) FROM dependency_proxy_manifests WHERE group_id = $1) AS manifest_count,
    (SELECT COALESCE(SUM(size), 0) FROM dependency_proxy_manifests WHERE group_id = $1)
        AS manifest_bytes,
    (SELECT COUNT(*) FROM dependency_proxy_manifests WHERE group_id = $1 AND status IN (1, 2))
        AS manifests_leaving,
    (SELECT COUNT(*) FROM dependency_proxy_blobs WHERE group_id = $1) AS blob_count,
    (SELECT COALESCE(SUM(size), 0) FROM dependency_proxy_blobs WHERE group_id = $1) AS blob_bytes,
    (SELECT COUNT(*) FROM dependency_proxy_blobs WHERE group_id = $1 AND status IN (1, 2))
        AS blobs_leaving
"""


async def _recount_now(group_id: int) -> Recount:
    async with in_transaction():
        # A write first: on SQLite it takes the write lock (as BEGIN IMMEDIATE
        # would), so no row changes between the count and the stored value.
        await sql.execute(
            "INSERT INTO dependency_proxy_group_totals (group_id, manifest_count, manifest_bytes,"
            " manifests_leaving, blob_count, blob_bytes, blobs_leaving)"
            " VALUES ($1, 0, 0, 0, 0, 0, 0) ON CONFLICT (group_id) DO NOTHING",
            group_id,
        )
        # On PostgreSQL, lock the totals row before counting: a writer whose
        # trigger already changed it has committed by then (its rows are
        # counted), and one that has not reached its trigger yet waits for us
        # and adds its change to the value we store.
        lock = "" if sql.is_sqlite() else " FOR UPDATE"
        rows = await sql.fetch(
            f"SELECT * FROM dependency_proxy_group_totals WHERE group_id = $1{lock}", group_id
        )
        stored = CacheTotals(**{name: int(rows[0][name]) for name in COUNTERS})
        counts = (await sql.fetch(_COUNT, group_id))[0]
        counted = CacheTotals(**{name: int(counts[name]) for name in COUNTERS})
        await _store(group_id, counted)
    return Recount(group_id, stored, counted)


async def _store(group_id: int, counted: CacheTotals) -> None:
    await GroupCacheTotals.filter(group_id=group_id).update(
        **{name: getattr(counted, name) for name in COUNTERS}
    )


async def recount(group_id: int) -> Recount:
    """Recompute one group's totals from its rows; say what was stored before."""
    return await sql.retry_busy(lambda: _recount_now(group_id), "recount")
