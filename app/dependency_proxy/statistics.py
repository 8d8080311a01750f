"""Per-group cache counters, accumulated in memory and flushed in batches.

The hot paths (cached manifest, cached blob) only add to a dict; a periodic
flush (and the lifespan's shutdown) turns the totals into one relative UPDATE
per group, so counting costs no database write per request.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, fields

from tortoise.expressions import F

from app.dependency_proxy.models import GroupCacheStatistic
from app.dependency_proxy.usage import UsageAccumulator


@dataclass
class Counts:
    manifest_hits: int = 0
    manifest_misses: int = 0
    blob_hits: int = 0
    blob_misses: int = 0
    bytes_from_cache: int = 0
    bytes_from_upstream: int = 0

    def __bool__(self) -> bool:
        return any(getattr(self, item.name) for item in fields(self))


class CacheStatistics:
    def __init__(self) -> None:
        self._pending: dict[int, Counts] = defaultdict(Counts)
        #: The same events over time, per group and hour (`usage.py`).
        self.usage = UsageAccumulator()

    def add(self, group_id: int, **increments: int) -> None:
        counts = self._pending[group_id]
        for name, value in increments.items():
            setattr(counts, name, getattr(counts, name) + value)

    def pending(self, group_id: int) -> Counts:
        """Counts not yet flushed (added to the stored ones when reading)."""
        return self._pending.get(group_id) or Counts()

    async def flush(self) -> None:
        try:
            await self._flush_counts()
        finally:
            await self.usage.flush()

    async def _flush_counts(self) -> None:
        pending, self._pending = self._pending, defaultdict(Counts)
        for group_id, counts in pending.items():
            if not counts:
                continue
            await GroupCacheStatistic.get_or_create(group_id=group_id)
            changes = {
                item.name: F(item.name) + getattr(counts, item.name)
                for item in fields(counts)
                if getattr(counts, item.name)
            }
            await GroupCacheStatistic.filter(group_id=group_id).update(**changes)


async def read_counts(statistics: CacheStatistics | None, group_id: int) -> Counts:
    """Stored totals plus what this instance has not flushed yet."""
    row = await GroupCacheStatistic.get_or_none(group_id=group_id)
    stored = (
        Counts(**{item.name: getattr(row, item.name) for item in fields(Counts)})
        if row
        else Counts()
    )
    if statistics is not None:
        extra = statistics.pending(group_id)
        for item in fields(Counts):
            setattr(stored, item.name, getattr(stored, item.name) + getattr(extra, item.name))
    return stored
