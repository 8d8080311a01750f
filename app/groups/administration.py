"""Group changes on behalf of a principal: each checks the policy first.

The pages (and any other surface) call these instead of the unchecked
`app.groups.services` / `app.accounts.services` helpers that the CLI uses.
"""

from __future__ import annotations

from datetime import date

from app.accounts import services as accounts
from app.accounts.models import DeployToken
from app.accounts.principal import Principal
from app.accounts.services import CreatedDeployToken
from app.errors import InvalidInput, NotFound, PermissionDenied
from app.groups import policy
from app.groups import services as groups
from app.groups.models import AccessLevel, Group, Membership


async def readable_group(principal: Principal, full_path: str) -> Group:
    """The group at `full_path` if the principal may see it; NotFound otherwise."""
    group = await groups.find_group(full_path)
    if group is None or not await policy.can_read(principal, group):
        raise NotFound(f"group {full_path!r} not found")
    return group


async def create_group(principal: Principal, full_path: str, name: str | None = None) -> Group:
    """Any signed-in user may create a top-level group; a subgroup needs Owner of its parent.

    The creator becomes Owner of the new group.
    """
    user = principal.user
    if user is None or not user.is_active or not principal.has_scope("api"):
        raise PermissionDenied("only signed-in users may create groups")
    full_path = full_path.strip().strip("/")
    parent_path, _, _ = full_path.rpartition("/")
    if parent_path:
        parent = await groups.find_group(parent_path)
        if parent is None or not await policy.can_read(principal, parent):
            raise NotFound(f"parent group {parent_path!r} not found")
        if not await policy.can_administer(principal, parent):
            raise PermissionDenied(f"only Owners of {parent.full_path} may create subgroups")
    return await groups.create_group(full_path, name=name or None, owner=user)


async def _require_owner(principal: Principal, group: Group) -> None:
    if not await policy.can_administer(principal, group):
        raise PermissionDenied(f"only Owners of {group.full_path} may manage it")


async def _guard_last_owner(group: Group, membership: Membership | None) -> None:
    """A top-level group keeps at least one direct Owner (as on GitLab)."""
    if group.parent_id is not None or membership is None:  # type: ignore[attr-defined]
        return
    if membership.access_level != AccessLevel.OWNER:
        return
    owners = await Membership.filter(group_id=group.id, access_level=AccessLevel.OWNER).count()
    if owners <= 1:
        raise InvalidInput("a group must keep at least one Owner")


async def set_member(principal: Principal, group: Group, username: str, role: str) -> Membership:
    """Add `username` to the group with `role`, or change the role of a direct member."""
    await _require_owner(principal, group)
    level = groups.parse_role(role)
    if not username.strip():
        raise InvalidInput("username can't be blank")
    user = await accounts.find_user(username)
    if user is None:
        raise NotFound(f"user {username.strip()!r} not found")
    current = await Membership.get_or_none(group_id=group.id, user_id=user.id)
    if level != AccessLevel.OWNER:
        await _guard_last_owner(group, current)
    return await groups.add_member(group, user, level)


async def remove_member(principal: Principal, group: Group, username: str) -> None:
    await _require_owner(principal, group)
    user = await accounts.find_user(username)
    if user is None:
        raise NotFound(f"user {username!r} not found")
    await _guard_last_owner(group, await Membership.get_or_none(group_id=group.id, user_id=user.id))
    await groups.remove_member(group, user)


async def list_deploy_tokens(principal: Principal, group: Group) -> list[DeployToken]:
    await _require_owner(principal, group)
    return await accounts.list_deploy_tokens(group)


async def create_deploy_token(
    principal: Principal,
    group: Group,
    name: str,
    scopes: list[str],
    expires_at: date | None = None,
    username: str | None = None,
) -> CreatedDeployToken:
    await _require_owner(principal, group)
    return await accounts.create_deploy_token(group, name, scopes, expires_at, username or None)


async def revoke_deploy_token(principal: Principal, group: Group, name: str) -> DeployToken:
    await _require_owner(principal, group)
    return await accounts.revoke_deploy_token(group, name)
