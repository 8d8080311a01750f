"""Pin or unpin a cached image: the TTL policy never expires a pinned image.

The pin is on the rows the name matches; what it protects (the platform
manifests of a pinned index, the blobs they name) is worked out when the
expiry runs (`pins.py`), so an image pulled again after pinning stays
protected as a whole. Deleting the image or clearing the cache still removes
it: those are an Owner's explicit choices.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.accounts.principal import Principal
from app.dependency_proxy import cached_images
from app.dependency_proxy.cached_images import ManifestRef
from app.dependency_proxy.models import Manifest


@dataclass(frozen=True)
class PinResult:
    group_path: str
    images: tuple[str, ...]  # `image:tag` / `image@digest` of every row changed or already so
    pinned: bool
    manifests: tuple[Manifest, ...]  # the rows, as they are now


async def pin_manifest(principal: Principal, ref: ManifestRef, *, pinned: bool = True) -> PinResult:
    """Owner only; idempotent (pinning a pinned image changes nothing)."""
    group, rows = await cached_images.owned_rows(principal, ref)
    await Manifest.filter(id__in=[row.id for row in rows]).update(pinned=pinned)
    for row in rows:
        row.pinned = pinned
    return PinResult(
        group_path=group.full_path,
        images=tuple(cached_images.name_of(row) for row in rows),
        pinned=pinned,
        manifests=tuple(rows),
    )
