"""What a group's pins protect from the TTL policy (and from eviction, once it exists).

A pinned row protects itself; a pinned index also protects the cached
platform manifests it lists; and every protected single-platform manifest
protects the blobs it names. Worked out when the expiry runs, from the few
pinned rows of the group, so a platform pulled after the pin is covered too.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.dependency_proxy import cached_images
from app.dependency_proxy.models import Manifest
from app.dependency_proxy.references import blob_digests


@dataclass(frozen=True)
class Protected:
    manifest_ids: frozenset[int] = frozenset()
    blob_digests: frozenset[str] = frozenset()


async def protected_of(group_id: int) -> Protected:
    pinned = list(
        await Manifest.filter(group_id=group_id, pinned=True, status__in=cached_images.LIVE)
    )
    if not pinned:
        return Protected()
    rows = pinned + await cached_images.platform_rows(group_id, pinned)
    digests: set[str] = set()
    for row in rows:
        digests |= blob_digests(bytes(row.content))
    return Protected(frozenset(row.id for row in rows), frozenset(digests))
