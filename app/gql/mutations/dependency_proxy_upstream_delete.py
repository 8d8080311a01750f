"""dependencyProxyUpstreamDelete: remove an upstream from a group's own list (Owner)."""

from __future__ import annotations

import strawberry

from app.dependency_proxy.services.remove_upstream import remove_upstream
from app.gql.context import Info
from app.gql.mutations.base import attempt, group_for


@strawberry.input
class DependencyProxyUpstreamDeleteInput:
    client_mutation_id: str | None = None
    group_path: strawberry.ID
    name: str


@strawberry.type
class DependencyProxyUpstreamDeletePayload:
    client_mutation_id: str | None
    errors: list[str]


async def dependency_proxy_upstream_delete_mutation(
    info: Info, input: DependencyProxyUpstreamDeleteInput
) -> DependencyProxyUpstreamDeletePayload | None:
    group = await group_for(info, str(input.group_path))
    _, errors = await attempt(remove_upstream(info.context.viewer, group, input.name))
    return DependencyProxyUpstreamDeletePayload(
        client_mutation_id=input.client_mutation_id, errors=errors
    )
