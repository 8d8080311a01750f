"""`Group.dependencyProxyUpstreams`: a group's upstream registries, as Owners see them.

Named after GitLab's container virtual registry upstreams (`name`, `url`,
`username`, `cacheValidityHours`); the password is never readable.
"""

from __future__ import annotations

import strawberry

from app.dependency_proxy.services.list_upstreams import list_upstreams
from app.dependency_proxy.upstream_lists import UpstreamListing, UpstreamView
from app.errors import NotFound, PermissionDenied
from app.gql.context import Info
from app.groups.models import Group


@strawberry.type(description="Dockyard: one registry of a group's ordered upstream list.")
class DependencyProxyUpstream:
    name: str
    url: str
    position: int = strawberry.field(description="1 is asked first.")
    docker_hub: bool = strawberry.field(
        description="Docker Hub: its `library/` namespace applies to one-word names."
    )
    username: str | None
    has_credentials: bool = strawberry.field(description="A password is set (never readable).")
    cache_validity_hours: int | None = strawberry.field(
        description="Hours a cached tag is served unchecked; null: the group's revalidation "
        "interval decides."
    )
    inherited_from: str | None = strawberry.field(
        description="The ancestor group whose list this is; null for the group's own."
    )

    @classmethod
    def of(cls, view: UpstreamView, listing: UpstreamListing) -> DependencyProxyUpstream:
        return cls(
            name=view.name,
            url=view.url,
            position=view.position,
            docker_hub=view.docker_hub,
            username=view.username,
            has_credentials=view.has_credentials,
            cache_validity_hours=view.cache_validity_hours,
            inherited_from=listing.inherited_from,
        )


async def upstreams_of(info: Info, group: Group) -> list[DependencyProxyUpstream] | None:
    """The list that applies to the group's pulls; null unless the viewer is an Owner."""
    try:
        listing = await list_upstreams(info.context.viewer, group, info.context.settings)
    except (NotFound, PermissionDenied):
        return None
    return [DependencyProxyUpstream.of(view, listing) for view in listing.upstreams]
