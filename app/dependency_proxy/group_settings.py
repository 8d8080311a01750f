"""A group's Dependency Proxy setting and TTL policy rows, built lazily as GitLab does."""

from __future__ import annotations

from app.dependency_proxy.models import GroupSetting, ImageTtlGroupPolicy
from app.groups.models import Group


async def setting_for(group: Group) -> GroupSetting:
    setting = await GroupSetting.get_or_none(group_id=group.id)
    if setting is None:
        setting, _ = await GroupSetting.get_or_create(group_id=group.id)
    return setting


async def ttl_policy_for(group: Group) -> ImageTtlGroupPolicy:
    policy = await ImageTtlGroupPolicy.get_or_none(group_id=group.id)
    if policy is None:
        policy, _ = await ImageTtlGroupPolicy.get_or_create(group_id=group.id)
    return policy
