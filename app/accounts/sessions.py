"""Web sessions: what the signed session cookie holds, and CSRF tokens.

Starlette's SessionMiddleware (installed in app.asgi) signs the cookie with
the instance secret; these helpers are the only code that reads or writes
its keys, so the web pages and GraphQL (session + CSRF) agree. The cookie
holds a random session id; the record in `user_sessions` decides on every
request whether it still stands for someone (sign-out, a password change or
a block ends it server-side, so a copied cookie stops working at once).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import MutableMapping
from typing import Any

from app.accounts import user_sessions
from app.accounts.models import User, UserSession
from app.accounts.principal import Principal

SESSION_KEY = "session_id"
CSRF_KEY = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "authenticity_token"


async def sign_in(
    session: MutableMapping[str, Any], user: User, address: str, user_agent: str
) -> UserSession:
    """Start a new server-side session for this browser (never reuse one: no fixation)."""
    if isinstance(previous := session.get(SESSION_KEY), str):
        await user_sessions.end(previous, user_sessions.EndReason.SIGNED_OUT)
    session.clear()
    started = await user_sessions.start(user, address, user_agent)
    session[SESSION_KEY] = started.secret
    session[CSRF_KEY] = secrets.token_urlsafe(32)
    return started.record


async def sign_out(session: MutableMapping[str, Any]) -> None:
    if isinstance(secret := session.get(SESSION_KEY), str):
        await user_sessions.end(secret, user_sessions.EndReason.SIGNED_OUT)
    session.clear()


async def principal_from_session(session: MutableMapping[str, Any]) -> Principal | None:
    """The signed-in user, looked up again with the session record (one indexed query):
    an ended session, a blocked user or an old cookie stands for no one. The cookie is
    left as it is (a form's CSRF check still reads it); `forget` clears it."""
    secret = session.get(SESSION_KEY)
    if not isinstance(secret, str):
        return None
    record = await user_sessions.find_live(secret)
    if record is None or not record.user.is_active:
        return None
    return Principal(user=record.user, session=record)


def forget(session: MutableMapping[str, Any]) -> None:
    """Sign the browser out of a session that no longer stands for anyone (ended, its
    user blocked, or a cookie from before server-side sessions)."""
    if session.get(SESSION_KEY) is not None or session.get("user_id") is not None:
        session.clear()


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
