"""Remove an upstream from a group's own list (Owner).

A group that inherits its list is told where the list is set; removing the
last entry of an own list makes the group inherit again. What the group
cached through the upstream stays cached (rows are the group's own cache).
"""

from __future__ import annotations

from tortoise.transactions import in_transaction

from app.accounts.principal import Principal
from app.dependency_proxy.models import Upstream
from app.dependency_proxy.upstream_lists import renumber
from app.dependency_proxy.upstreams import effective_rows
from app.errors import InvalidInput, NotFound
from app.groups.models import Group
from app.groups.policy import require_administer


async def remove_upstream(principal: Principal, group: Group, name: str) -> None:
    """Remove the upstream called `name` (the operator at the command line may too)."""
    await require_administer(principal, group, "change its upstream registries")
    async with in_transaction():
        owner, rows = await effective_rows(group)
        if owner is None or owner.id != group.id:
            where = (
                f"inherits its upstreams from {owner.full_path}"
                if owner is not None
                else "has the default upstream (Docker Hub) and no list of its own"
            )
            raise InvalidInput(f"the group {group.full_path} {where}: nothing to remove here")
        row = next((row for row in rows if row.name == name), None)
        if row is None:
            raise NotFound(f"the group {group.full_path} has no upstream named {name!r}")
        await Upstream.filter(id=row.id).delete()
        await renumber([other for other in rows if other.id != row.id])
