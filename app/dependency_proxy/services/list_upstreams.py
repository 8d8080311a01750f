"""A group's upstreams as they apply to its pulls: its own, inherited, or the default."""

from __future__ import annotations

from app.accounts.principal import Principal
from app.config import Settings
from app.dependency_proxy.upstream_lists import UpstreamListing, listing_of
from app.groups.models import Group
from app.groups.policy import require_administer


async def list_upstreams(principal: Principal, group: Group, settings: Settings) -> UpstreamListing:
    """Owner only (the list names the registries the group's images come from and
    the accounts used there); the operator at the command line is one."""
    await require_administer(principal, group, "see its upstream registries")
    return await listing_of(group, settings)
