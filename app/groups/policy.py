"""Who may do what in a group: the one place for "may pull", "may read" and "may administer".

GitLab's rules: membership of an ancestor group counts for its descendants;
pulling through the proxy needs Guest; settings, TTL policy, upstream
credentials, members, tokens and clearing the cache need Owner; pre-warming
the cache needs Maintainer; instance admins
(and the operator at the command line) may do everything. Tokens are further
limited by their scopes; a deploy token only works for its own group and that
group's subgroups; a group access token acts as its bot, a member of its group
only.

The `require_*` helpers are what services call: a principal who may not read a
group gets NotFound (a private group and a missing one look alike), one who may
read it but not change it PermissionDenied, and one whose token's scope is the
only thing missing InsufficientScope.
"""

from __future__ import annotations

from app.accounts.models import User
from app.accounts.principal import Principal
from app.errors import InsufficientScope, NotFound, PermissionDenied
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


async def level_at_least(principal: Principal, group: Group, level: AccessLevel) -> bool:
    """Whether the principal's person (or bot) holds `level` here; scopes aside."""
    if principal.is_admin:
        return True
    user = principal.user
    if user is None or not user.is_active or principal.deploy_token is not None:
        return False
    current = await access_level(user, group)
    return current is not None and current >= level


async def can_pull(principal: Principal, group: Group) -> bool:
    """May pull images through the group's Dependency Proxy."""
    if not principal.may_use_dependency_proxy:
        return False
    if principal.deploy_token is not None:
        return deploy_token_covers(principal, group)
    return await level_at_least(principal, group, AccessLevel.GUEST)


async def can_read(principal: Principal, group: Group) -> bool:
    """May see the group, its members and its cache (pages, GraphQL queries)."""
    if not principal.may_use_api:
        return False
    return await level_at_least(principal, group, AccessLevel.GUEST)


async def can_administer(principal: Principal, group: Group) -> bool:
    """May change settings, TTL policy, credentials, members, tokens; may clear the cache."""
    if not principal.may_use_api or not principal.has_scope("api"):
        return False
    return await level_at_least(principal, group, AccessLevel.OWNER)


async def can_maintain(principal: Principal, group: Group) -> bool:
    """May start cache work that fills the group's cache (pre-warm jobs): Maintainer or Owner."""
    if not principal.may_use_api or not principal.has_scope("api"):
        return False
    return await level_at_least(principal, group, AccessLevel.MAINTAINER)


def not_found(full_path: str) -> NotFound:
    return NotFound(f"group {full_path!r} not found")


async def require_read(principal: Principal, group: Group) -> None:
    if not await can_read(principal, group):
        raise not_found(group.full_path)


async def require_administer(principal: Principal, group: Group, what: str = "manage it") -> None:
    """Owner (or admin) with a credential that may change things; see the module doc."""
    if await can_administer(principal, group):
        return
    await require_read(principal, group)
    if principal.may_use_api and await level_at_least(principal, group, AccessLevel.OWNER):
        raise InsufficientScope(
            "this token has the read_api scope, which only reads: "
            f"to {what}, use a token with the api scope"
        )
    raise PermissionDenied(f"only Owners of {group.full_path} may {what}")


async def require_maintain(principal: Principal, group: Group, what: str) -> None:
    """Maintainer, Owner (or admin) with a credential that may change things."""
    if await can_maintain(principal, group):
        return
    await require_read(principal, group)
    if principal.may_use_api and await level_at_least(principal, group, AccessLevel.MAINTAINER):
        raise InsufficientScope(
            "this token has the read_api scope, which only reads: "
            f"to {what}, use a token with the api scope"
        )
    raise PermissionDenied(f"only Owners and Maintainers of {group.full_path} may {what}")


def require_api_write(principal: Principal, what: str) -> None:
    """A person (not a deploy token, not anonymous) whose credential may change things."""
    if principal.is_operator:
        return
    if not principal.may_use_api:
        raise PermissionDenied(f"only signed-in users may {what}")
    if not principal.has_scope("api"):
        raise InsufficientScope(
            f"this token has the read_api scope, which only reads: to {what}, "
            "use a token with the api scope"
        )
