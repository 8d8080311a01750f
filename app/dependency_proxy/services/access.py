"""Authorisation shared by the cache services: read needs Guest, changes need Owner.

A principal who may not read a group gets NotFound, never PermissionDenied,
so no surface can tell a private group from a missing one.
"""

from __future__ import annotations

from app.accounts.principal import Principal
from app.errors import NotFound, PermissionDenied
from app.groups import policy
from app.groups.models import Group


def _not_found(group: Group) -> NotFound:
    return NotFound(f"group {group.full_path!r} not found")


async def require_reader(principal: Principal, group: Group) -> None:
    if not await policy.can_read(principal, group):
        raise _not_found(group)


async def require_owner(principal: Principal, group: Group) -> None:
    if await policy.can_administer(principal, group):
        return
    if not await policy.can_read(principal, group):
        raise _not_found(group)
    raise PermissionDenied(f"only Owners of {group.full_path} may change its Dependency Proxy")
