"""Read-side group queries for the pages: your groups with your role, every group's cache size."""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.functions import Count, Sum

from app.accounts.models import User
from app.accounts.principal import Principal
from app.dependency_proxy.models import Blob, Manifest
from app.errors import PermissionDenied
from app.groups.models import AccessLevel, Group, Membership


@dataclass(frozen=True)
class GroupWithRole:
    group: Group
    access_level: AccessLevel
    inherited: bool  # the level comes from membership of an ancestor group


@dataclass(frozen=True)
class GroupCacheSize:
    group: Group
    member_count: int
    manifest_count: int
    blob_count: int
    total_size_bytes: int


async def list_user_groups(user: User) -> list[GroupWithRole]:
    """Groups the user belongs to, directly or through an ancestor, with the effective role.

    Sorted by full path, so subgroups follow their parent.
    """
    memberships = await Membership.filter(user_id=user.id).prefetch_related("group")
    direct = {item.group.full_path_key: AccessLevel(item.access_level) for item in memberships}
    if not direct:
        return []
    groups: dict[int, Group] = {item.group.id: item.group for item in memberships}
    for key in direct:
        for child in await Group.filter(full_path_key__startswith=key + "/"):
            groups[child.id] = child
    result = []
    for group in groups.values():
        levels = [(direct[key], key) for key in group.ancestor_keys if key in direct]
        level, source = max(levels)
        result.append(GroupWithRole(group, level, inherited=source != group.full_path_key))
    return sorted(result, key=lambda item: item.group.full_path_key)


async def list_groups_with_cache_size(principal: Principal) -> list[GroupCacheSize]:
    """Every group with what its cache holds (admin area)."""
    if not principal.is_admin or not principal.has_scope("api"):
        raise PermissionDenied("only administrators may list every group")
    groups = await Group.all().order_by("full_path_key")
    blobs = await _sums(Blob)
    manifests = await _sums(Manifest)
    members = dict(
        await Membership.annotate(count=Count("id"))
        .group_by("group_id")
        .values_list("group_id", "count")
    )
    return [
        GroupCacheSize(
            group=group,
            member_count=int(members.get(group.id, 0)),
            manifest_count=manifests.get(group.id, (0, 0))[0],
            blob_count=blobs.get(group.id, (0, 0))[0],
            total_size_bytes=blobs.get(group.id, (0, 0))[1] + manifests.get(group.id, (0, 0))[1],
        )
        for group in groups
    ]


async def _sums(model: type[Blob] | type[Manifest]) -> dict[int, tuple[int, int]]:
    rows = (
        await model.annotate(count=Count("id"), total=Sum("size"))
        .group_by("group_id")
        .values_list("group_id", "count", "total")
    )
    return {int(group_id): (int(count), int(total or 0)) for group_id, count, total in rows}
