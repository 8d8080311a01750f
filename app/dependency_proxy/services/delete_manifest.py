"""Delete one cached image of a group (GitLab users asked for years: gitlab-org/gitlab#355556).

The manifest rows go at once. The blobs they name are released (marked for
deletion, as a clear marks them) unless another live manifest of the same
group still names them; the cleanup worker then removes a file only when no
row of any group references it any more, so another group's copy of the same
bytes stays. A multi-platform index can take its cached platform manifests
(and so their blobs) along.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.accounts.principal import Principal
from app.dependency_proxy import cached_images
from app.dependency_proxy.cached_images import ManifestRef


@dataclass(frozen=True)
class DeleteManifestResult:
    group_path: str
    deleted: tuple[str, ...]  # `image:tag` / `image@digest` of every row deleted
    blobs_released: int  # the group's blob rows marked for deletion


async def delete_manifest(
    principal: Principal, ref: ManifestRef, *, with_platforms: bool = False
) -> DeleteManifestResult:
    """Owner only. Deletes the rows `ref` names (and, with `with_platforms`, the
    platform manifests of an index among them) and releases the blobs nothing
    else in the group names."""
    group, rows = await cached_images.owned_rows(principal, ref)
    if with_platforms:
        known = {row.id for row in rows}
        rows += [
            row for row in await cached_images.platform_rows(group.id, rows) if row.id not in known
        ]
    released = await cached_images.remove_rows(group.id, rows)
    return DeleteManifestResult(
        group_path=group.full_path,
        deleted=tuple(cached_images.name_of(row) for row in rows),
        blobs_released=released,
    )
