"""clearDependencyProxyCache: Dockyard's own (GitLab only has the REST endpoint).

It answers when every entry is marked (in chunks: pulls go on meanwhile);
`Group.dependencyProxyCacheClear` shows a running clear's progress.
"""

from __future__ import annotations

import strawberry

from app.dependency_proxy.services.clear_cache import clear_cache
from app.gql.context import Info
from app.gql.mutations.base import attempt, group_for


@strawberry.input
class ClearDependencyProxyCacheInput:
    client_mutation_id: str | None = None
    group_path: strawberry.ID


@strawberry.type
class ClearDependencyProxyCachePayload:
    client_mutation_id: str | None
    errors: list[str]
    manifests_marked: int = strawberry.field(description="Manifests scheduled for deletion.")
    blobs_marked: int = strawberry.field(description="Blobs scheduled for deletion.")


async def clear_dependency_proxy_cache_mutation(
    info: Info, input: ClearDependencyProxyCacheInput
) -> ClearDependencyProxyCachePayload | None:
    group = await group_for(info, str(input.group_path))
    result, errors = await attempt(clear_cache(info.context.viewer, group))
    return ClearDependencyProxyCachePayload(
        client_mutation_id=input.client_mutation_id,
        errors=errors,
        manifests_marked=result.manifests_marked if result else 0,
        blobs_marked=result.blobs_marked if result else 0,
    )
