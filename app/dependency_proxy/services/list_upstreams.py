"""A group's upstreams as they apply to its pulls: its own, inherited, or the default."""

from __future__ import annotations

from app.accounts.principal import Principal
from app.config import Settings
from app.dependency_proxy.services.access import require_owner
from app.dependency_proxy.upstream_lists import UpstreamListing, listing_of
from app.groups.models import Group


async def list_upstreams(
    actor: Principal | None, group: Group, settings: Settings
) -> UpstreamListing:
    """Owner only (the list names the registries the group's images come from and
    the accounts used there). `actor` None is the operator at the command line."""
    if actor is not None:
        await require_owner(actor, group)
    return await listing_of(group, settings)
