"""Web sessions: what the signed session cookie holds, and CSRF tokens.

Starlette's SessionMiddleware (installed in app.asgi) signs the cookie with
the instance secret; these helpers are the only code that reads or writes
its keys, so the web pages and GraphQL (session + CSRF) agree.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import MutableMapping
from typing import Any

from app.accounts.models import User
from app.accounts.principal import Principal

USER_KEY = "user_id"
CSRF_KEY = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "authenticity_token"


def sign_in(session: MutableMapping[str, Any], user: User) -> None:
    session.clear()  # a new session on every sign-in (no fixation)
    session[USER_KEY] = user.id
    session[CSRF_KEY] = secrets.token_urlsafe(32)


def sign_out(session: MutableMapping[str, Any]) -> None:
    session.clear()


async def principal_from_session(session: MutableMapping[str, Any]) -> Principal | None:
    """The signed-in user, looked up again (a blocked user is signed out at once)."""
    user_id = session.get(USER_KEY)
    if not isinstance(user_id, int):
        return None
    user = await User.get_or_none(id=user_id)
    if user is None or not user.is_active:
        session.clear()
        return None
    return Principal(user=user)


def csrf_token(session: MutableMapping[str, Any]) -> str:
    token = session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_KEY] = token
    return token


def csrf_valid(session: MutableMapping[str, Any], presented: str | None) -> bool:
    expected = session.get(CSRF_KEY)
    if not isinstance(expected, str) or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())
