"""Server-side records of signed-in browsers: start, look up, list, end.

The session cookie carries only a random id (and the CSRF token); this table
says whether that id still stands for someone. Ending the row ends the session
at once, wherever the cookie has been copied to.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from tortoise.queryset import QuerySet

from app import clock
from app.accounts.models import User, UserSession
from app.accounts.secrets import secret_digest
from app.errors import NotFound

# A session nobody used for this long has ended (the cookie's max age is the same).
IDLE_LIFETIME = timedelta(days=7)
# last_activity_at is written at most this often: no write per page view.
ACTIVITY_RESOLUTION = timedelta(minutes=1)
# Ended sessions are kept this long (who signed in from where), then swept.
KEEP_ENDED = timedelta(days=30)
USER_AGENT_LENGTH = 255


class EndReason(StrEnum):
    SIGNED_OUT = "signed_out"
    REVOKED = "revoked"
    SIGNED_OUT_ELSEWHERE = "signed_out_elsewhere"
    PASSWORD_CHANGED = "password_changed"
    BLOCKED = "blocked"
    IDLE = "idle"


@dataclass(frozen=True)
class StartedSession:
    """`secret` goes into the cookie and nowhere else; only its digest is stored."""

    secret: str
    record: UserSession


async def start(user: User, address: str, user_agent: str) -> StartedSession:
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    record = await UserSession.create(
        user=user,
        session_digest=secret_digest(secret),
        last_activity_at=now,
        ip_address=address[:64],
        user_agent=user_agent[:USER_AGENT_LENGTH],
    )
    return StartedSession(secret=secret, record=record)


async def find_live(secret: str) -> UserSession | None:
    """The live session behind a cookie's id, with its user (one indexed query), or None.

    Refreshes last activity at most once a minute; ends a session idle too long.
    """
    record = (
        await UserSession.filter(session_digest=secret_digest(secret), ended_at=None)
        .select_related("user")
        .first()
    )
    if record is None:
        return None
    now = clock.now()
    if now - record.last_activity_at > IDLE_LIFETIME:
        await _end(UserSession.filter(id=record.id, ended_at=None), EndReason.IDLE, now)
        return None
    if now - record.last_activity_at >= ACTIVITY_RESOLUTION:
        record.last_activity_at = now
        await UserSession.filter(id=record.id).update(last_activity_at=now)
    return record


async def end(secret: str, reason: EndReason = EndReason.SIGNED_OUT) -> None:
    query = UserSession.filter(session_digest=secret_digest(secret), ended_at=None)
    await _end(query, reason, clock.now())


async def end_all(user: User, reason: EndReason, *, keep: UserSession | None = None) -> int:
    """End every live session of `user` (but `keep`); returns how many ended."""
    query = UserSession.filter(user_id=user.id, ended_at=None)
    if keep is not None:
        query = query.exclude(id=keep.id)
    return await _end(query, reason, clock.now())


async def revoke(user: User, session_id: int) -> UserSession:
    """End one of the user's own sessions (the active sessions page)."""
    record = await UserSession.get_or_none(id=session_id, user_id=user.id, ended_at=None)
    if record is None:
        raise NotFound("that session has already ended")
    await _end(UserSession.filter(id=record.id, ended_at=None), EndReason.REVOKED, clock.now())
    return record


async def list_live(user: User) -> list[UserSession]:
    """The user's sessions still in use, most recently active first."""
    since = clock.now() - IDLE_LIFETIME
    return await UserSession.filter(
        user_id=user.id, ended_at=None, last_activity_at__gte=since
    ).order_by("-last_activity_at", "-id")


async def sweep(now: datetime | None = None) -> int:
    """End idle sessions and delete those ended long ago; returns rows deleted."""
    now = now or clock.now()
    await _end(
        UserSession.filter(ended_at=None, last_activity_at__lt=now - IDLE_LIFETIME),
        EndReason.IDLE,
        now,
    )
    return await UserSession.filter(ended_at__lt=now - KEEP_ENDED).delete()


async def _end(query: QuerySet[UserSession], reason: EndReason, now: datetime) -> int:
    return int(await query.update(ended_at=now, end_reason=str(reason)))
