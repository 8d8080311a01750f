"""Server-side session records: looked up by the cookie's id, ended for good."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app import clock
from app.accounts import records as accounts
from app.accounts import user_sessions
from app.accounts.models import User, UserSession, UserState
from app.accounts.secrets import secret_digest
from app.errors import NotFound

pytestmark = pytest.mark.usefixtures("database")


@pytest.fixture
async def alice() -> User:
    return await accounts.create_user("alice", "alice@example.com", "alice-password")


def at(moment: datetime) -> None:
    clock.set_clock(lambda: moment)


START = datetime(2030, 1, 1, tzinfo=UTC)


async def test_only_the_digest_of_the_cookie_id_is_stored(alice: User) -> None:
    started = await user_sessions.start(
        alice, "192.0.2.1", "Mozilla/5.0 (X11; Linux) Firefox/128.0"
    )
    row = await UserSession.get(id=started.record.id)
    assert row.session_digest == secret_digest(started.secret)
    assert started.secret not in repr(row.__dict__)
    found = await user_sessions.find_live(started.secret)
    assert found is not None and found.user.username == "alice"
    assert await user_sessions.find_live(started.secret + "x") is None


async def test_last_activity_is_written_at_most_once_a_minute(alice: User) -> None:
    at(START)
    started = await user_sessions.start(alice, "192.0.2.1", "ua")
    at(START + timedelta(seconds=30))
    await user_sessions.find_live(started.secret)
    assert (await UserSession.get(id=started.record.id)).last_activity_at == START
    at(START + timedelta(seconds=61))
    await user_sessions.find_live(started.secret)
    row = await UserSession.get(id=started.record.id)
    assert row.last_activity_at == START + timedelta(seconds=61)


async def test_a_session_idle_for_a_week_has_ended(alice: User) -> None:
    at(START)
    started = await user_sessions.start(alice, "192.0.2.1", "ua")
    at(START + timedelta(days=7, seconds=1))
    assert await user_sessions.find_live(started.secret) is None
    assert (await UserSession.get(id=started.record.id)).end_reason == "idle"


async def test_ending_all_sessions_can_keep_one(alice: User) -> None:
    first = await user_sessions.start(alice, "192.0.2.1", "ua")
    second = await user_sessions.start(alice, "192.0.2.2", "ua")
    third = await user_sessions.start(alice, "192.0.2.3", "ua")
    ended = await user_sessions.end_all(
        alice, user_sessions.EndReason.SIGNED_OUT_ELSEWHERE, keep=second.record
    )
    assert ended == 2
    assert await user_sessions.find_live(first.secret) is None
    assert await user_sessions.find_live(third.secret) is None
    assert await user_sessions.find_live(second.secret) is not None
    assert [item.id for item in await user_sessions.list_live(alice)] == [second.record.id]


async def test_nobody_revokes_another_users_session(alice: User) -> None:
    bob = await accounts.create_user("bob", "bob@example.com", "bob-password")
    bobs = await user_sessions.start(bob, "192.0.2.9", "ua")
    with pytest.raises(NotFound):
        await user_sessions.revoke(alice, bobs.record.id)
    assert await user_sessions.find_live(bobs.secret) is not None
    await user_sessions.revoke(bob, bobs.record.id)
    assert await user_sessions.find_live(bobs.secret) is None


async def test_blocking_and_a_new_password_end_every_session(alice: User) -> None:
    started = await user_sessions.start(alice, "192.0.2.1", "ua")
    await accounts.set_state(alice, UserState.BLOCKED)
    await accounts.set_state(alice, UserState.ACTIVE)  # unblocking brings nothing back
    assert await user_sessions.find_live(started.secret) is None

    again = await user_sessions.start(alice, "192.0.2.1", "ua")
    await accounts.set_password(alice, "a-new-password-9")
    assert await user_sessions.find_live(again.secret) is None
    reasons = {row.end_reason for row in await UserSession.filter(user_id=alice.id)}
    assert reasons == {"blocked", "password_changed"}


async def test_sweep_ends_idle_sessions_and_deletes_old_ended_ones(alice: User) -> None:
    at(START)
    idle = await user_sessions.start(alice, "192.0.2.1", "ua")
    await user_sessions.start(alice, "192.0.2.2", "ua")
    at(START + timedelta(days=6))
    live = await user_sessions.start(alice, "192.0.2.3", "ua")
    at(START + timedelta(days=8))
    assert await user_sessions.sweep() == 0  # ended now, kept a while
    assert await user_sessions.find_live(idle.secret) is None
    at(START + timedelta(days=39))
    assert await user_sessions.sweep() == 2
    assert await UserSession.filter(user_id=alice.id).count() == 1
    assert (await UserSession.get(id=live.record.id)).ended_at is not None  # idle by now
