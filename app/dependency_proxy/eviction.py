"""Size limits: which images go when a group is over its limit or the instance over its budget.

A group's size is what its totals count (`cache_totals.py`: manifests and
blobs, rows on their way out included); the instance's is the sum over its
groups (a blob two groups hold counts twice, as each group's page shows it,
so the sum errs on the side of evicting). Over a limit, the least recently
pulled images (manifest rows by `read_at`) go first until the group (or the
instance) is under it again. Never evicted:

- an image pulled in the last `RECENT` minutes (its client may still be
  fetching its layers, and a limit must not turn a cache into a loop of
  fetch-and-evict);
- a pinned image, the platform manifests of a pinned index and the blobs they
  name (`pins.py`);
- an image one of whose blobs is being downloaded right now (on this machine,
  or on any instance through the download leases), and a blob read in the
  last `RECENT` minutes (it is being served: a hit stamps `read_at`).

Evicting an image is deleting one image (`cached_images.remove_rows`, as
`services/delete_manifest.py` does): its row goes, its blobs are released
unless another live manifest of the group names them. The cleanup worker
(`cleanup.py`) then deletes the released rows at once and removes a file when
no group holds it any more.

When a download found the disk full, the pass also frees what that download
needed beyond the free space, across groups as for the budget, even when no
limit is set: a full cache makes room rather than failing every new pull.
"""

from __future__ import annotations

import heapq
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from app.config import human_size
from app.dependency_proxy import cached_images, sql
from app.dependency_proxy.models import Blob, GroupCacheTotals, GroupSetting, Manifest
from app.dependency_proxy.pins import protected_of
from app.dependency_proxy.references import blob_digests
from app.groups.models import Group

# An image pulled this recently is never evicted (README: "Size limits and eviction").
RECENT = timedelta(minutes=10)

GROUP_LIMIT = "group_limit"
INSTANCE_BUDGET = "instance_budget"
DISK_FULL = "disk_full"

InFlightOf = Callable[[Sequence[str]], Awaitable[set[str]]]


@dataclass(frozen=True)
class Eviction:
    """One image that goes (or would go, in a dry run), and why."""

    group_id: int
    group_path: str
    manifest_id: int
    image: str  # `image:tag` or `image@digest`, as pulled
    size_bytes: int  # what leaves the group's totals: the row and the blobs only it named
    last_pulled: datetime
    reason: str  # GROUP_LIMIT, INSTANCE_BUDGET or DISK_FULL
    limit_bytes: int  # the limit or budget exceeded (for DISK_FULL: the size to get under)


@dataclass(frozen=True)
class Overrun:
    """A limit exceeded: by a group (`group_path`) or by the instance (None)."""

    group_path: str | None
    size_bytes: int
    limit_bytes: int
    reason: str


@dataclass(frozen=True)
class EvictionPlan:
    evictions: tuple[Eviction, ...] = ()
    over: tuple[Overrun, ...] = ()  # every limit exceeded when the pass looked
    # Limits still exceeded once everything evictable is chosen: what is left is
    # recent, pinned or in flight.
    still_over: tuple[Overrun, ...] = ()

    @property
    def bytes(self) -> int:
        return sum(item.size_bytes for item in self.evictions)


@dataclass
class _Group:
    """One group's live images as the pass sees them."""

    id: int
    path: str
    total: int
    rows: list[Manifest]  # live, least recently pulled first
    named: dict[int, set[str]]  # manifest id -> blob digests it names
    refs: Counter[str]  # blob digest -> live manifests naming it
    blob_sizes: dict[str, int]
    kept: set[str]  # blob digests never released: pinned, recently read, in flight
    flying: set[str]  # blob digests being downloaded: their images stay whole
    protected: frozenset[int]  # manifest ids a pin protects
    chosen: dict[int, Eviction] = field(default_factory=dict)

    def evictable(self, row: Manifest, cutoff: datetime) -> bool:
        return (
            row.id not in self.chosen
            and row.id not in self.protected
            and not row.pinned
            and row.read_at <= cutoff
            and not self.named[row.id] & self.flying
        )

    def choose(self, row: Manifest, reason: str, limit: int) -> Eviction:
        """Take the row; the bytes this frees from the group's totals."""
        freed = int(row.size)
        for digest in self.named[row.id]:
            self.refs[digest] -= 1
            if self.refs[digest] == 0 and digest not in self.kept:
                freed += self.blob_sizes.get(digest, 0)
        self.total -= freed
        chosen = Eviction(
            self.id,
            self.path,
            row.id,
            cached_images.name_of(row),
            freed,
            row.read_at,
            reason,
            limit,
        )
        self.chosen[row.id] = chosen
        return chosen


async def _load(
    group_id: int, path: str, total: int, now: datetime, in_flight: InFlightOf
) -> _Group:
    rows = list(
        await Manifest.filter(group_id=group_id, status__in=cached_images.LIVE).order_by(
            "read_at", "id"
        )
    )
    named = {row.id: blob_digests(bytes(row.content)) for row in rows}
    refs: Counter[str] = Counter(digest for digests in named.values() for digest in digests)
    blobs = await Blob.filter(group_id=group_id, status__in=cached_images.LIVE).values_list(
        "digest", "size", "read_at"
    )
    sizes = {str(digest): int(size) for digest, size, _ in blobs}
    recent = {str(digest) for digest, _, read_at in blobs if read_at > now - RECENT}
    pins = await protected_of(group_id)
    flying = await in_flight(sorted(set(sizes) | set(refs)))
    return _Group(
        group_id,
        path,
        total,
        rows,
        named,
        refs,
        sizes,
        kept=recent | set(pins.blob_digests) | flying,
        flying=flying,
        protected=pins.manifest_ids,
    )


async def _totals(group_ids: Sequence[int] | None) -> dict[int, int]:
    if group_ids is not None and not group_ids:
        return {}
    query = (
        GroupCacheTotals.all()
        if group_ids is None
        else GroupCacheTotals.filter(group_id__in=list(group_ids))
    )
    rows = await query.values_list("group_id", "manifest_bytes", "blob_bytes")
    return {int(group_id): int(manifests) + int(blobs) for group_id, manifests, blobs in rows}


async def _paths(group_ids: Sequence[int]) -> dict[int, str]:
    rows = await Group.filter(id__in=list(group_ids)).values_list("id", "full_path")
    return {int(ident): str(path) for ident, path in rows}


def free_bytes(folder: Path) -> int:
    """Free space of the file system holding `folder`, for unprivileged writers."""
    found = os.statvfs(folder)
    return found.f_bavail * found.f_frsize


def _stream(group: _Group) -> Iterator[tuple[datetime, int, _Group, Manifest]]:
    return ((row.read_at, row.id, group, row) for row in group.rows)


@dataclass
class _Pass:
    now: datetime
    in_flight: InFlightOf
    groups: dict[int, _Group] = field(default_factory=dict)
    paths: dict[int, str] = field(default_factory=dict)
    totals: dict[int, int] = field(default_factory=dict)
    evictions: list[Eviction] = field(default_factory=list)

    async def group(self, group_id: int) -> _Group:
        if group_id not in self.groups:
            self.groups[group_id] = await _load(
                group_id,
                self.paths.get(group_id, str(group_id)),
                self.totals.get(group_id, 0),
                self.now,
                self.in_flight,
            )
        return self.groups[group_id]

    async def under_group_limit(self, group_id: int, limit: int) -> bool:
        group = await self.group(group_id)
        cutoff = self.now - RECENT
        for row in group.rows:
            if group.total <= limit:
                break
            if group.evictable(row, cutoff):
                self.evictions.append(group.choose(row, GROUP_LIMIT, limit))
        return group.total <= limit

    def instance_total(self) -> int:
        loaded = {ident: group.total for ident, group in self.groups.items()}
        return sum(loaded.get(ident, total) for ident, total in self.totals.items())

    def _oldest_first(self) -> Iterator[tuple[_Group, Manifest]]:
        """Every loaded group's rows, least recently pulled first across groups."""
        streams = [_stream(group) for group in self.groups.values()]
        for _, _, group, row in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
            yield group, row

    async def under_instance_target(self, target: int, reason: str) -> bool:
        for group_id in self.totals:
            await self.group(group_id)
        cutoff = self.now - RECENT
        total = self.instance_total()
        for group, row in self._oldest_first():
            if total <= target:
                break
            if group.evictable(row, cutoff):
                chosen = group.choose(row, reason, target)
                self.evictions.append(chosen)
                total -= chosen.size_bytes
        return total <= target


async def plan_eviction(
    now: datetime,
    in_flight: InFlightOf,
    *,
    budget: int = 0,
    group_id: int | None = None,
    space_needed: int = 0,
) -> EvictionPlan:
    """What goes, and why: groups over their limits first (their own oldest images), then
    the instance over `budget` (0: none), then the room a full disk needs
    (`space_needed` bytes to free beyond the current totals). With `group_id`,
    only that group's limit is looked at."""
    limits = GroupSetting.filter(size_limit_bytes__isnull=False)
    if group_id is not None:
        limits = limits.filter(group_id=group_id)
    limited = {
        int(ident): int(limit)
        for ident, limit in await limits.values_list("group_id", "size_limit_bytes")
    }
    work = _Pass(now, in_flight)
    # Every group's totals only when the instance's size matters (a budget, a full
    # disk); otherwise those of the groups with a limit: a pass under every limit
    # reads a few rows.
    whole = group_id is None and bool(budget or space_needed)
    work.totals = await _totals(None if whole else sorted(limited))
    work.paths = await _paths(list(work.totals))
    over: list[Overrun] = []
    still: list[Overrun] = []
    for ident, limit in sorted(limited.items()):
        size = work.totals.get(ident, 0)
        if size > limit:
            entry = Overrun(work.paths.get(ident), size, limit, GROUP_LIMIT)
            over.append(entry)
            if not await work.under_group_limit(ident, limit):
                group = work.groups[ident]
                still.append(Overrun(group.path, group.total, limit, GROUP_LIMIT))
    if group_id is None:
        for target, reason in _instance_targets(work.instance_total(), budget, space_needed):
            over.append(Overrun(None, work.instance_total(), target, reason))
            if not await work.under_instance_target(target, reason):
                still.append(Overrun(None, work.instance_total(), target, reason))
    return EvictionPlan(tuple(work.evictions), tuple(over), tuple(still))


def _instance_targets(total: int, budget: int, space_needed: int) -> list[tuple[int, str]]:
    targets = []
    if budget and total > budget:
        targets.append((budget, INSTANCE_BUDGET))
    if space_needed:
        targets.append((max(0, min(total, budget or total) - space_needed), DISK_FULL))
    return targets


async def apply_eviction(plan: EvictionPlan, now: datetime) -> tuple[list[Eviction], int]:
    """Delete the planned rows that are still evictable (a pull or a pin since the
    plan keeps its image) and release their blobs; (what went, blob rows released)."""
    by_group: dict[int, list[Eviction]] = {}
    for item in plan.evictions:
        by_group.setdefault(item.group_id, []).append(item)
    gone: list[Eviction] = []
    released = 0
    for group_id, items in by_group.items():
        rows = list(
            await Manifest.filter(
                id__in=[item.manifest_id for item in items],
                group_id=group_id,
                status__in=cached_images.LIVE,
                pinned=False,
                read_at__lte=now - RECENT,
            )
        )
        if not rows:
            continue
        still = {row.id for row in rows}
        keep = await _kept_blobs(group_id, now)
        released += await cached_images.remove_rows(group_id, rows, keep=keep)
        gone += [item for item in items if item.manifest_id in still]
    return gone, released


async def _kept_blobs(group_id: int, now: datetime) -> set[str]:
    """Blobs of the group read recently, or protected by a pin: never released."""
    recent = await Blob.filter(
        group_id=group_id, status__in=cached_images.LIVE, read_at__gt=now - RECENT
    ).values_list("digest", flat=True)
    return {str(digest) for digest in recent} | set((await protected_of(group_id)).blob_digests)


async def instance_size() -> int:
    """The instance's cached bytes as the groups' totals count them (one row per group)."""
    rows = await sql.fetch(
        "SELECT COALESCE(SUM(manifest_bytes + blob_bytes), 0) AS size"
        " FROM dependency_proxy_group_totals"
    )
    return int(rows[0]["size"])


def why(item: Eviction | Overrun) -> str:
    """`over group limit 1.00 GiB`, `over instance budget 10.00 GiB`, `disk full: …`
    (sizes as the pages show them)."""
    limit = human_size(item.limit_bytes)
    if item.reason == GROUP_LIMIT:
        return f"over group limit {limit}"
    if item.reason == INSTANCE_BUDGET:
        return f"over instance budget {limit}"
    return f"disk full: making room down to {limit}"
