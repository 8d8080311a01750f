"""destroyDependencyProxyManifest: Dockyard's (GitLab named its destroy mutations
this way, e.g. destroyPackage, but has none for the Dependency Proxy).

Deletes one cached manifest at once and releases the blobs nothing else in the
group names; `deletePlatformManifests` takes a multi-platform index's cached
platform manifests along. Owners only: anyone else gets the unauthorised error.
"""

from __future__ import annotations

import strawberry

from app.dependency_proxy.cached_images import ManifestRef
from app.dependency_proxy.services.delete_manifest import delete_manifest
from app.gql.context import Info
from app.gql.mutations.base import attempt
from app.gql.permissions import ResourceNotAvailable
from app.gql.scalars import DependencyProxyManifestID, id_of


@strawberry.input
class DestroyDependencyProxyManifestInput:
    client_mutation_id: str | None = None
    id: DependencyProxyManifestID = strawberry.field(
        description="Global ID of the cached manifest to delete."
    )
    delete_platform_manifests: bool = strawberry.field(
        default=False,
        description="For a multi-platform index: also delete its cached platform manifests.",
    )


@strawberry.type
class DestroyDependencyProxyManifestPayload:
    client_mutation_id: str | None
    errors: list[str]
    deleted_images: list[str] = strawberry.field(
        description="`image:tag` or `image@digest` of every manifest deleted."
    )
    blobs_released: int = strawberry.field(
        description="Blobs of the group scheduled for deletion (no other manifest names them)."
    )


async def destroy_dependency_proxy_manifest_mutation(
    info: Info, input: DestroyDependencyProxyManifestInput
) -> DestroyDependencyProxyManifestPayload | None:
    manifest_id = id_of(str(input.id), "DependencyProxy::Manifest")
    if manifest_id is None:
        raise ResourceNotAvailable()
    result, errors = await attempt(
        delete_manifest(
            info.context.viewer,
            ManifestRef(manifest_id=manifest_id),
            with_platforms=input.delete_platform_manifests,
        )
    )
    return DestroyDependencyProxyManifestPayload(
        client_mutation_id=input.client_mutation_id,
        errors=errors,
        deleted_images=list(result.deleted) if result else [],
        blobs_released=result.blobs_released if result else 0,
    )
