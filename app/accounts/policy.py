"""Who may do what with accounts: administrators (and the operator) manage users and
the instance; people manage their own tokens and sessions.

Scopes narrow what a token may do: an administrator's `read_api` token reads,
it does not change, and is told so (InsufficientScope).
"""

from __future__ import annotations

from app.accounts.models import User
from app.accounts.principal import Principal
from app.errors import InsufficientScope, PermissionDenied


def is_admin_reader(principal: Principal) -> bool:
    """An administrator whose credential may read the API (any scope that reads)."""
    return principal.is_admin and principal.may_use_api


def require_admin(principal: Principal, what: str) -> None:
    """An administrator whose credential may change things (session, or `api` token)."""
    if not is_admin_reader(principal):
        raise PermissionDenied(f"only administrators may {what}")
    if not principal.has_scope("api"):
        raise InsufficientScope(
            f"this token has the read_api scope, which only reads: to {what}, "
            "use a token with the api scope"
        )


def require_admin_reader(principal: Principal, what: str) -> None:
    if not is_admin_reader(principal):
        raise PermissionDenied(f"only administrators may {what}")


def require_self_or_admin(
    principal: Principal, user: User, what: str, *, by_token: str | None = None
) -> None:
    """The person themselves, or an administrator. From a web session a person may do
    anything with their own tokens; through a token only what `by_token` allows
    ("read": any API scope; "write": `api`; None: nothing, so that a leaked token
    cannot mint itself successors)."""
    if principal.is_operator:
        return
    me = principal.user
    if me is not None and me.id == user.id and me.is_active and not me.is_bot:
        if principal.session is not None or principal.scopes is None:
            return
        if by_token == "read" and principal.may_use_api:
            return
        if by_token == "write" and principal.has_scope("api"):
            return
        if by_token == "write" and principal.may_use_api:
            raise InsufficientScope(
                f"this token has the read_api scope, which only reads: to {what}, "
                "use a token with the api scope"
            )
        if not principal.is_admin:
            raise PermissionDenied(f"sign in to {what}: a token cannot do that")
    require_admin(principal, what)
