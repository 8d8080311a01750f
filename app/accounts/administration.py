"""User administration on behalf of a principal (admin area), plus sign-in bookkeeping."""

from __future__ import annotations

from app import clock
from app.accounts import services as accounts
from app.accounts.models import User, UserState
from app.accounts.principal import Principal
from app.errors import InvalidInput, NotFound, PermissionDenied


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin or not principal.has_scope("api"):
        raise PermissionDenied("only administrators may manage users")


async def list_users(principal: Principal) -> list[User]:
    _require_admin(principal)
    return await accounts.list_users()


async def create_user(
    principal: Principal, username: str, email: str, password: str, *, is_admin: bool = False
) -> User:
    _require_admin(principal)
    return await accounts.create_user(username.strip(), email, password, is_admin=is_admin)


async def _target(principal: Principal, username: str) -> User:
    _require_admin(principal)
    user = await accounts.find_user(username)
    if user is None:
        raise NotFound(f"user {username!r} not found")
    return user


def _not_self(principal: Principal, user: User, what: str) -> None:
    if principal.user is not None and principal.user.id == user.id:
        raise InvalidInput(f"you cannot {what} yourself")


async def block_user(principal: Principal, username: str) -> User:
    user = await _target(principal, username)
    _not_self(principal, user, "block")
    return await accounts.set_state(user, UserState.BLOCKED)


async def unblock_user(principal: Principal, username: str) -> User:
    return await accounts.set_state(await _target(principal, username), UserState.ACTIVE)


async def set_admin(principal: Principal, username: str, is_admin: bool) -> User:
    user = await _target(principal, username)
    if not is_admin:
        _not_self(principal, user, "remove admin rights from")
    return await accounts.set_admin(user, is_admin)


async def reset_password(
    principal: Principal, username: str, password: str, *, require_change: bool = True
) -> User:
    """Set another user's password; every session of theirs ends. With `require_change`
    (the default) they must choose their own at the next sign-in."""
    user = await _target(principal, username)
    if principal.user is not None and principal.user.id == user.id:
        raise InvalidInput("change your own password on your password page")
    return await accounts.set_password(user, password, require_change=require_change)


async def record_sign_in(user: User) -> None:
    user.last_sign_in_at = clock.now()
    await user.save(update_fields=["last_sign_in_at"])
