"""Groups and memberships on behalf of a principal: each use case checks the policy first.

Pages, GraphQL, the REST API and the CLI (as the operator) all come through
here, so they can never disagree about who may do what.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Any

from tortoise.expressions import Q
from tortoise.functions import Count
from tortoise.queryset import QuerySet

from app.accounts import records as accounts
from app.accounts.policy import require_admin_reader
from app.accounts.principal import Principal
from app.errors import InvalidInput, NotFound, PermissionDenied
from app.groups import policy, records
from app.groups.models import AccessLevel, Group, Membership, Visibility
from app.groups.records import MemberView, parse_role
from app.pagination import Page, paginate

__all__ = ["MemberView", "parse_role"]


@dataclass(frozen=True)
class GroupWithRole:
    group: Group
    access_level: AccessLevel
    inherited: bool  # the level comes from membership of an ancestor group


@dataclass(frozen=True)
class GroupWithMembers:
    group: Group
    member_count: int  # direct members

    @property
    def id(self) -> int:
        return self.group.id


@dataclass(frozen=True)
class GroupOverview:
    group: Group
    role: str | None  # the viewer's role label ("Administrator" for admins outside it)
    is_owner: bool
    subgroups: list[Group]


# --- finding groups -------------------------------------------------------------------


async def find_readable_group(principal: Principal, full_path: str) -> Group:
    """The group at `full_path` if the principal may see it; NotFound otherwise."""
    group = await records.find_group(full_path)
    if group is None or not await policy.can_read(principal, group):
        raise policy.not_found(full_path)
    return group


async def find_readable_group_by_id(principal: Principal, ident: int) -> Group:
    group = await Group.get_or_none(id=ident)
    if group is None or not await policy.can_read(principal, group):
        raise policy.not_found(str(ident))
    return group


async def _visible_groups(principal: Principal) -> QuerySet[Group]:
    """Every group for admins; a person's groups and their subgroups otherwise."""
    if not principal.may_use_api:
        return Group.filter(id__in=[])
    if principal.is_admin:
        return Group.all()
    assert principal.user is not None
    return Group.filter(id__in=[item.group.id for item in await my_groups(principal)])


async def groups_page(principal: Principal, search: str | None = None, **page: Any) -> Page[Group]:
    """A keyset page (by id) of the groups the principal may see, searched by path."""
    query = await _visible_groups(principal)
    if search and search.strip():
        query = query.filter(full_path_key__icontains=search.strip().lower())
    return await paginate(query, newest_first=False, **page)


async def list_groups(principal: Principal, search: str | None = None) -> list[Group]:
    """The groups the principal may see, by full path (the command line's list)."""
    query = await _visible_groups(principal)
    if search and search.strip():
        query = query.filter(full_path_key__icontains=search.strip().lower())
    return await query.order_by("full_path_key")


async def my_groups(principal: Principal) -> list[GroupWithRole]:
    """Groups the principal's person belongs to, directly or through an ancestor, with the
    effective role; sorted by full path, so subgroups follow their parent."""
    user = principal.user
    if user is None or not principal.may_use_api:
        return []
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


async def groups_with_member_count(
    principal: Principal, search: str | None = None, **page: Any
) -> Page[GroupWithMembers]:
    """A keyset page of every group with its number of direct members (admin area)."""
    require_admin_reader(principal, "list every group")
    query = Group.all()
    if search and search.strip():
        query = query.filter(full_path_key__icontains=search.strip().lower())
    found = await paginate(query, newest_first=False, **page)
    counts = dict(
        await Membership.filter(group_id__in=[group.id for group in found.items])
        .annotate(count=Count("id"))
        .group_by("group_id")
        .values_list("group_id", "count")
    )
    items = [GroupWithMembers(group, int(counts.get(group.id, 0))) for group in found.items]
    return Page(items, found.has_next_page, found.has_previous_page)


async def group_overview(principal: Principal, group: Group) -> GroupOverview:
    await policy.require_read(principal, group)
    level = await policy.access_level(principal.user, group)
    role = level.label if level else ("Administrator" if principal.is_admin else None)
    return GroupOverview(
        group=group,
        role=role,
        is_owner=await policy.can_administer(principal, group),
        subgroups=await Group.filter(parent_id=group.id).order_by("path"),
    )


async def may_administer(principal: Principal, group: Group) -> bool:
    """Whether to offer Owner actions (the action itself checks again)."""
    return await policy.can_administer(principal, group)


# --- creating groups ---------------------------------------------------------------------


async def create_group(
    principal: Principal,
    full_path: str,
    name: str | None = None,
    *,
    description: str = "",
    visibility: Visibility = Visibility.PRIVATE,
) -> Group:
    """Any signed-in person may create a top-level group and becomes its Owner; a subgroup
    needs Owner of its parent. The operator creates groups without an Owner."""
    policy.require_api_write(principal, "create groups")
    if principal.is_bot:
        raise PermissionDenied("group access tokens cannot create groups")
    full_path = full_path.strip().strip("/")
    parent_path, _, _ = full_path.rpartition("/")
    if parent_path:
        parent = await records.find_group(parent_path)
        if parent is None or not await policy.can_read(principal, parent):
            raise NotFound(f"parent group {parent_path!r} not found: create it first")
        await policy.require_administer(principal, parent, "create subgroups")
    owner = None if principal.is_operator else principal.user
    return await records.create_group(
        full_path,
        name=name or None,
        description=description,
        visibility=visibility,
        owner=owner,
    )


# --- members ----------------------------------------------------------------------------------


async def _guard_last_owner(group: Group, membership: Membership | None) -> None:
    """A top-level group keeps at least one direct Owner (as on GitLab)."""
    if group.parent_id is not None or membership is None:  # type: ignore[attr-defined]
        return
    if membership.access_level != AccessLevel.OWNER:
        return
    owners = await Membership.filter(group_id=group.id, access_level=AccessLevel.OWNER).count()
    if owners <= 1:
        raise InvalidInput("a group must keep at least one Owner")


def _level_of(role: str | AccessLevel) -> AccessLevel:
    return role if isinstance(role, AccessLevel) else parse_role(role)


async def set_member(
    principal: Principal,
    group: Group,
    username: str,
    role: str | AccessLevel,
    *,
    existing_only: bool = False,
) -> Membership:
    """Add `username` to the group with `role`, or change a direct member's role
    (`existing_only`: only change). Owner only; a top-level group keeps an Owner;
    a group access token's bot belongs to its own group and no other."""
    await policy.require_administer(principal, group, "manage its members")
    level = _level_of(role)
    if not username.strip():
        raise InvalidInput("username can't be blank")
    user = await accounts.find_person(username)
    if user is None:
        raise InvalidInput(f"user {username.strip()!r} not found")
    current = await Membership.get_or_none(group_id=group.id, user_id=user.id)
    if existing_only and current is None:
        raise InvalidInput(f"{user.username} is not a direct member of {group.full_path}")
    if level != AccessLevel.OWNER:
        await _guard_last_owner(group, current)
    membership = await records.add_member(group, user, level)
    membership.user = user  # callers show who it is: no second query
    return membership


async def remove_member(principal: Principal, group: Group, username: str) -> None:
    await policy.require_administer(principal, group, "manage its members")
    user = await accounts.find_person(username)
    if user is None:
        raise InvalidInput(f"user {username!r} not found")
    await _guard_last_owner(group, await Membership.get_or_none(group_id=group.id, user_id=user.id))
    try:
        await records.remove_member(group, user)
    except NotFound as error:  # the group is known to an Owner: a mistake, not a secret
        raise InvalidInput(error.message) from None


async def members_page(
    principal: Principal, group: Group, search: str | None = None, **page: Any
) -> Page[MemberView]:
    """Direct and inherited members (Guest or more may see them), a keyset page by user."""
    await policy.require_read(principal, group)
    return await records.members_page(group, search, **page)


async def list_members(principal: Principal, group: Group) -> list[MemberView]:
    """Every direct and inherited member, by username (the command line's list)."""
    await policy.require_read(principal, group)
    return await records.list_members(group)
