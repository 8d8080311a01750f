"""updateDependencyProxyManifest: Dockyard's. Pin or unpin a cached image (Owner):
the TTL policy never expires a pinned image, its platform manifests or its blobs."""

from __future__ import annotations

import strawberry

from app.dependency_proxy.cached_images import ManifestRef
from app.dependency_proxy.services.pin_manifest import pin_manifest
from app.gql.context import Info
from app.gql.mutations.base import attempt
from app.gql.permissions import ResourceNotAvailable
from app.gql.scalars import DependencyProxyManifestID, id_of
from app.gql.types import DependencyProxyManifest


@strawberry.input
class UpdateDependencyProxyManifestInput:
    client_mutation_id: str | None = None
    id: DependencyProxyManifestID = strawberry.field(
        description="Global ID of the cached manifest."
    )
    pinned: bool = strawberry.field(
        description="Pinned images are never expired by the TTL policy."
    )


@strawberry.type
class UpdateDependencyProxyManifestPayload:
    client_mutation_id: str | None
    errors: list[str]
    dependency_proxy_manifest: DependencyProxyManifest | None


async def update_dependency_proxy_manifest_mutation(
    info: Info, input: UpdateDependencyProxyManifestInput
) -> UpdateDependencyProxyManifestPayload | None:
    manifest_id = id_of(str(input.id), "DependencyProxy::Manifest")
    if manifest_id is None:
        raise ResourceNotAvailable()
    result, errors = await attempt(
        pin_manifest(info.context.viewer, ManifestRef(manifest_id=manifest_id), pinned=input.pinned)
    )
    return UpdateDependencyProxyManifestPayload(
        client_mutation_id=input.client_mutation_id,
        errors=errors,
        dependency_proxy_manifest=DependencyProxyManifest(model=result.manifests[0])
        if result
        else None,
    )
