"""Clear a group's cache: mark every manifest and blob row pending destruction.

Marking instead of deleting keeps this fast and safe while pulls run: the pull
path only uses rows in the DEFAULT status and creates a fresh row next to a
marked one, and the cleanup worker deletes a file only when no row in any
group references it and no download of it is in flight.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.transactions import in_transaction

from app import clock
from app.accounts.principal import Principal
from app.dependency_proxy.models import Blob, CacheStatus, Manifest
from app.dependency_proxy.services.access import require_owner
from app.groups.models import Group

# ERROR rows are marked again so that clearing also retries failed deletions;
# PROCESSING rows are being deleted right now and are left alone.
MARKABLE = (CacheStatus.DEFAULT, CacheStatus.ERROR)


@dataclass(frozen=True)
class ClearCacheResult:
    manifests_marked: int
    blobs_marked: int


async def clear_cache(principal: Principal, group: Group) -> ClearCacheResult:
    """Owner only; idempotent (a second call marks nothing)."""
    await require_owner(principal, group)
    # Bulk updates skip auto_now; the cleanup worker takes the oldest marks first.
    marked = {"status": CacheStatus.PENDING_DESTRUCTION, "updated_at": clock.now()}
    async with in_transaction():
        manifests = await Manifest.filter(group_id=group.id, status__in=MARKABLE).update(**marked)
        blobs = await Blob.filter(group_id=group.id, status__in=MARKABLE).update(**marked)
    return ClearCacheResult(manifests_marked=int(manifests), blobs_marked=int(blobs))
