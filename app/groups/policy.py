"""Who may do what in a group.

GitLab's rules: membership of an ancestor group counts for its descendants;
pulling through the proxy needs Guest; settings, TTL policy, upstream
credentials and clearing the cache need Owner; instance admins may do
everything. Tokens are further limited by their scopes, and a deploy token
only works for its own group and that group's subgroups.
"""

from __future__ import annotations

from app.accounts.models import User
from app.accounts.principal import Principal
from app.groups.models import AccessLevel, Group, Membership


async def access_level(user: User | None, group: Group) -> AccessLevel | None:
    """The user's effective level in `group` (highest over the group and its ancestors)."""
    if user is None:
        return None
    levels: list[int] = await Membership.filter(  # type: ignore[assignment]
        user_id=user.id, group__full_path_key__in=group.ancestor_keys
    ).values_list("access_level", flat=True)
    return AccessLevel(max(levels)) if levels else None


def deploy_token_covers(principal: Principal, group: Group) -> bool:
    token = principal.deploy_token
    if token is None:
        return False
    token_group_key = token.group.full_path_key
    return token_group_key in group.ancestor_keys


async def _user_level_at_least(principal: Principal, group: Group, level: AccessLevel) -> bool:
    user = principal.user
    if user is None or not user.is_active:
        return False
    if user.is_admin:
        return True
    current = await access_level(user, group)
    return current is not None and current >= level


async def can_pull(principal: Principal, group: Group) -> bool:
    """May pull images through the group's Dependency Proxy."""
    if not principal.may_use_dependency_proxy:
        return False
    if principal.deploy_token is not None:
        return deploy_token_covers(principal, group)
    return await _user_level_at_least(principal, group, AccessLevel.GUEST)


async def can_read(principal: Principal, group: Group) -> bool:
    """May see the group and its cache (pages, GraphQL queries)."""
    if principal.deploy_token is not None:
        return False
    if not principal.has_scope("api") and not principal.has_scope("read_api"):
        return False
    return await _user_level_at_least(principal, group, AccessLevel.GUEST)


async def can_administer(principal: Principal, group: Group) -> bool:
    """May change settings, TTL policy, credentials, members; may clear the cache."""
    if principal.deploy_token is not None or not principal.has_scope("api"):
        return False
    return await _user_level_at_least(principal, group, AccessLevel.OWNER)
