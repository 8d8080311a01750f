"""Users on behalf of a principal: administrators (and the operator) create, list, block,
promote and reset them. Each use case checks the policy first.
"""

from __future__ import annotations

from typing import Any

from app import clock
from app.accounts import records
from app.accounts.models import User, UserState
from app.accounts.policy import require_admin, require_admin_reader
from app.accounts.principal import Principal
from app.errors import InvalidInput, NotFound
from app.pagination import Page


async def users_page(principal: Principal, search: str | None = None, **page: Any) -> Page[User]:
    """One keyset page of people (oldest first), searched by username, name or email."""
    require_admin_reader(principal, "list users")
    return await records.users_page(search, **page)


async def list_users(principal: Principal, search: str | None = None) -> list[User]:
    """Every person, by username (the command line's list)."""
    require_admin_reader(principal, "list users")
    return await records.list_users(search)


async def create_user(
    principal: Principal,
    username: str,
    email: str,
    password: str,
    *,
    name: str = "",
    is_admin: bool = False,
) -> User:
    require_admin(principal, "create users")
    return await records.create_user(
        username.strip(), email, password, name=name, is_admin=is_admin
    )


async def _target(principal: Principal, username: str, what: str) -> User:
    require_admin(principal, what)
    user = await records.find_person(username)
    if user is None:
        raise NotFound(f"user {username!r} not found")
    return user


def _not_self(principal: Principal, user: User, what: str) -> None:
    if principal.user is not None and principal.user.id == user.id:
        raise InvalidInput(f"you cannot {what} yourself")


async def block_user(principal: Principal, username: str) -> User:
    """Block: every password, token and session of theirs stops working at once."""
    user = await _target(principal, username, "block users")
    _not_self(principal, user, "block")
    return await records.set_state(user, UserState.BLOCKED)


async def unblock_user(principal: Principal, username: str) -> User:
    user = await _target(principal, username, "unblock users")
    return await records.set_state(user, UserState.ACTIVE)


async def set_admin(principal: Principal, username: str, is_admin: bool) -> User:
    user = await _target(principal, username, "change administrators")
    if not is_admin:
        _not_self(principal, user, "remove admin rights from")
    return await records.set_admin(user, is_admin)


async def reset_password(
    principal: Principal, username: str, password: str, *, require_change: bool = True
) -> User:
    """Set another user's password; every session of theirs ends, and every registry token
    obtained with the old password. With `require_change` (the default) they must
    choose their own at the next sign-in."""
    user = await _target(principal, username, "reset passwords")
    if principal.user is not None and principal.user.id == user.id:
        raise InvalidInput("change your own password on your password page")
    return await records.set_password(user, password, require_change=require_change)


async def record_sign_in(user: User) -> None:
    """Sign-in bookkeeping (the sign-in itself already checked the password)."""
    user.last_sign_in_at = clock.now()
    await User.filter(id=user.id).update(last_sign_in_at=user.last_sign_in_at)


def current_user(principal: Principal) -> User | None:
    """The person behind an API request (`currentUser`); None for anyone the API does
    not serve (anonymous, deploy tokens, a token without an API scope)."""
    return principal.user if principal.may_use_api and not principal.is_operator else None
