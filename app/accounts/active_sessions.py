"""The active sessions page's use cases: a person sees and ends their own sessions."""

from __future__ import annotations

from app.accounts import records, user_sessions
from app.accounts.models import User, UserSession
from app.accounts.principal import Principal
from app.errors import PermissionDenied


def _person(principal: Principal) -> tuple[User, UserSession]:
    # Sessions are managed from a session: a token cannot list or end them.
    if principal.user is None or principal.session is None:
        raise PermissionDenied("only a signed-in person may manage their sessions")
    return principal.user, principal.session


async def list_sessions(principal: Principal) -> list[UserSession]:
    """The person's live sessions, most recently active first."""
    user, _ = _person(principal)
    return await user_sessions.list_live(user)


async def revoke_session(principal: Principal, session_id: int) -> None:
    """End one of the person's own sessions (another user's is NotFound)."""
    user, _ = _person(principal)
    await user_sessions.revoke(user, session_id)


async def sign_out_everywhere_else(principal: Principal) -> int:
    """End every session of the person but the one asking, and every registry token
    obtained with their password; returns how many sessions ended."""
    user, current = _person(principal)
    return await records.end_sessions_and_password_tokens(
        user, user_sessions.EndReason.SIGNED_OUT_ELSEWHERE, keep=current
    )
