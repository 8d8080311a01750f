"""Read-side group queries for the pages: your groups with your role, every group (admins).

What each group's cache holds is the cache's business
(`app.dependency_proxy.services.group_cache`); the admin page puts the two together.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import or_

from tortoise.expressions import Q
from tortoise.functions import Count

from app.accounts.models import User
from app.accounts.principal import Principal
from app.errors import PermissionDenied
from app.groups.models import AccessLevel, Group, Membership


@dataclass(frozen=True)
class GroupWithRole:
    group: Group
    access_level: AccessLevel
    inherited: bool  # the level comes from membership of an ancestor group


@dataclass(frozen=True)
class GroupWithMembers:
    group: Group
    member_count: int  # direct members


async def list_user_groups(user: User) -> list[GroupWithRole]:
    """Groups the user belongs to, directly or through an ancestor, with the effective role.

    Sorted by full path, so subgroups follow their parent.
    """
    memberships = await Membership.filter(user_id=user.id).prefetch_related("group")
    direct = {item.group.full_path_key: AccessLevel(item.access_level) for item in memberships}
    if not direct:
        return []
    groups: dict[int, Group] = {item.group.id: item.group for item in memberships}
    # Every subgroup of every group the user is a member of, in one query.
    below = reduce(or_, (Q(full_path_key__startswith=key + "/") for key in direct))
    for child in await Group.filter(below):
        groups[child.id] = child
    result = []
    for group in groups.values():
        levels = [(direct[key], key) for key in group.ancestor_keys if key in direct]
        level, source = max(levels)
        result.append(GroupWithRole(group, level, inherited=source != group.full_path_key))
    return sorted(result, key=lambda item: item.group.full_path_key)


async def list_groups_with_member_count(principal: Principal) -> list[GroupWithMembers]:
    """Every group with its number of direct members (admin area), by full path."""
    if not principal.is_admin or not principal.has_scope("api"):
        raise PermissionDenied("only administrators may list every group")
    groups = await Group.all().order_by("full_path_key")
    members = dict(
        await Membership.annotate(count=Count("id"))
        .group_by("group_id")
        .values_list("group_id", "count")
    )
    return [GroupWithMembers(group, int(members.get(group.id, 0))) for group in groups]
