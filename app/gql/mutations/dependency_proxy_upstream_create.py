"""dependencyProxyUpstreamCreate: add an upstream registry to a group's list (Owner)."""

from __future__ import annotations

import strawberry

from app.dependency_proxy.services.add_upstream import add_upstream
from app.dependency_proxy.services.list_upstreams import list_upstreams
from app.gql.context import Info
from app.gql.mutations.base import attempt, group_for
from app.gql.upstreams import DependencyProxyUpstream


@strawberry.input
class DependencyProxyUpstreamCreateInput:
    client_mutation_id: str | None = None
    group_path: strawberry.ID
    url: str = strawberry.field(description="The registry's base URL (https://ghcr.io).")
    name: str | None = strawberry.field(default=None, description="Default: from the host.")
    username: str | None = None
    password: str | None = strawberry.field(
        default=None, description="Never readable back; give it together with username."
    )
    position: int | None = strawberry.field(default=None, description="1 is asked first.")
    cache_validity_hours: int | None = None


@strawberry.type
class DependencyProxyUpstreamCreatePayload:
    client_mutation_id: str | None
    errors: list[str]
    upstream: DependencyProxyUpstream | None


async def dependency_proxy_upstream_create_mutation(
    info: Info, input: DependencyProxyUpstreamCreateInput
) -> DependencyProxyUpstreamCreatePayload | None:
    group = await group_for(info, str(input.group_path))
    settings = info.context.settings
    view, errors = await attempt(
        add_upstream(
            info.context.viewer,
            group,
            settings,
            url=input.url,
            name=input.name,
            username=input.username,
            password=input.password,
            position=input.position,
            cache_validity_hours=input.cache_validity_hours,
        )
    )
    upstream = None
    if view is not None:
        listing = await list_upstreams(info.context.viewer, group, settings)
        upstream = DependencyProxyUpstream.of(view, listing)
    return DependencyProxyUpstreamCreatePayload(
        client_mutation_id=input.client_mutation_id, errors=errors, upstream=upstream
    )
