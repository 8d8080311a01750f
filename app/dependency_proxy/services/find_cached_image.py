"""One cached image as a confirmation shows it: its name, whether it is a
multi-platform index and how many of its platform manifests are cached."""

from __future__ import annotations

from dataclasses import dataclass

from app.accounts.principal import Principal
from app.dependency_proxy import cached_images
from app.dependency_proxy.cached_images import ManifestRef
from app.errors import NotFound
from app.groups.models import Group
from app.groups.policy import require_read


@dataclass(frozen=True)
class CachedImage:
    id: int
    name: str  # `image:tag` or `image@digest`
    digest: str
    size: int | None  # config + layers; None for an index
    pinned: bool
    is_index: bool
    platforms_cached: int  # the index's platform manifests cached in the group


async def find_cached_image(principal: Principal, group: Group, ref: ManifestRef) -> CachedImage:
    """Guest or more; NotFound when `ref` names no live row of `group`."""
    await require_read(principal, group)
    rows = await cached_images.rows_of(ref)
    row = rows[0] if rows else None
    if row is None or row.group_id != group.id:  # type: ignore[attr-defined]
        raise NotFound(f"no such cached image in {group.full_path}")
    platforms = await cached_images.platform_rows(group.id, [row])
    return CachedImage(
        id=row.id,
        name=cached_images.name_of(row),
        digest=row.digest,
        size=row.image_size,
        pinned=bool(row.pinned),
        is_index=cached_images.is_index(row),
        platforms_cached=len(platforms),
    )
