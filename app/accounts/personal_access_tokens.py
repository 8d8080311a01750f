"""Personal access tokens on behalf of a principal: a person manages their own,
administrators and the operator anyone's. Create, list, revoke, rotate.

Creating needs a web session (or an administrator): a leaked token cannot mint
itself successors. An own token with `api` may list, revoke and rotate (GitLab's
self-rotation for scripts); `read_api` may list.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from app.accounts import records, token_lifetime
from app.accounts.models import PersonalAccessToken, User
from app.accounts.policy import require_self_or_admin
from app.accounts.principal import Principal
from app.accounts.records import CreatedToken
from app.accounts.secrets import PERSONAL_ACCESS_TOKEN_PREFIX
from app.errors import NotFound, PermissionDenied
from app.pagination import Page, paginate


async def _owner(
    principal: Principal, username: str | None, what: str, by_token: str | None = None
) -> User:
    if username is None:
        if principal.user is None:
            raise PermissionDenied(f"only a signed-in person may {what}")
        user: User | None = principal.user
    else:
        user = await records.find_person(username)
        if user is None:
            if principal.is_admin:
                raise NotFound(f"user {username!r} not found")
            raise PermissionDenied(f"only administrators may {what} for others")
    assert user is not None
    require_self_or_admin(principal, user, what, by_token=by_token)
    return user


async def create_personal_access_token(
    principal: Principal,
    name: str,
    scopes: str | list[str],
    expires_at: date | None = None,
    *,
    username: str | None = None,
) -> CreatedToken:
    """A new token for the principal's person (or, for admins, `username`'s); the secret
    is in the result only. The instance's maximum lifetime applies."""
    user = await _owner(principal, username, "create personal access tokens")
    expiry = await token_lifetime.allowed_expiry(expires_at)
    return await records.create_personal_access_token(user, name, scopes, expiry)


async def personal_access_tokens_page(
    principal: Principal, *, username: str | None = None, **page: Any
) -> Page[PersonalAccessToken]:
    """The person's tokens, newest first, revoked ones included (never their secrets)."""
    user = await _owner(principal, username, "list personal access tokens", "read")
    return await paginate(records.personal_access_tokens_query(user.id), **page)


async def list_personal_access_tokens(
    principal: Principal, *, username: str | None = None
) -> list[PersonalAccessToken]:
    user = await _owner(principal, username, "list personal access tokens", "read")
    return await records.list_personal_access_tokens(user)


async def revoke_personal_access_token(
    principal: Principal, name: str, *, username: str | None = None
) -> PersonalAccessToken:
    user = await _owner(principal, username, "revoke personal access tokens", "write")
    return await records.revoke_personal_access_token(user, name)


async def rotate_personal_access_token(
    principal: Principal,
    name: str | None = None,
    *,
    token_id: int | None = None,
    username: str | None = None,
    expires_at: date | None = None,
) -> CreatedToken:
    """GitLab's rotate: a new secret with the same name and scopes, the old token revoked
    at once. It keeps its expiry date unless given one; the maximum lifetime applies."""
    user = await _owner(principal, username, "rotate personal access tokens", "write")
    if token_id is not None:
        found = await PersonalAccessToken.get_or_none(id=token_id, user_id=user.id, revoked_at=None)
        if found is None:
            raise NotFound("no active personal access token with that id")
        token = found
    else:
        token = await records.find_active_token(user, name or "")
    if expires_at is not None:
        expiry = await token_lifetime.allowed_expiry(expires_at)
    else:
        expiry = await token_lifetime.allowed_expiry(token.expires_at, clamp=True)
    return await records.rotate_personal_access_token(
        token, expiry, prefix=PERSONAL_ACCESS_TOKEN_PREFIX
    )
