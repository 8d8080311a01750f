"""Change your password: the current one is checked (throttled), the new one must be
strong and typed twice, and every other session ends."""

from __future__ import annotations

import httpx

from app import clock
from app.accounts import user_sessions
from app.accounts.models import User, UserSession
from app.accounts.passwords import verify_password
from tests.functional.web.conftest import PASSWORD, Browser, MakeBrowser


def freeze_clock() -> None:
    frozen = clock.now()
    clock.set_clock(lambda: frozen)


PAGE = "/-/user_settings/password/edit"
NEW_PASSWORD = "a brand new passphrase"


def change(current: str, new: str = NEW_PASSWORD, confirmation: str | None = None) -> dict:
    return {
        "current_password": current,
        "new_password": new,
        "password_confirmation": new if confirmation is None else confirmation,
    }


async def test_the_page_is_linked_and_asks_for_the_current_password(as_owner: Browser) -> None:
    home = await as_owner.get("/")
    assert f'href="{PAGE}"' in home.text
    assert 'href="/-/user_settings/active_sessions"' in home.text
    page = await as_owner.get(PAGE)
    assert page.status_code == 200
    assert 'name="current_password"' in page.text and 'name="password_confirmation"' in page.text
    assert PASSWORD not in page.text


async def test_changing_the_password_ends_every_other_session_and_keeps_this_one(
    make_browser: MakeBrowser, owner: User
) -> None:
    laptop, phone = await make_browser(), await make_browser("127.0.0.2")
    assert (await laptop.sign_in("olivia")).status_code == 303
    assert (await phone.sign_in("olivia")).status_code == 303
    old_cookie = laptop.http.cookies.get("_dockyard_session")

    response = await laptop.post(PAGE, change(PASSWORD))
    assert response.status_code == 303
    assert response.headers["location"] == PAGE
    page = await laptop.get(PAGE)
    assert "Password changed. Every other session of yours was signed out." in page.text
    assert (await laptop.get("/")).status_code == 200  # still signed in here
    assert (await phone.get("/")).status_code == 303  # signed out there

    # The laptop's old cookie (copied before the change) is dead too: a fresh id replaced it.
    thief = await make_browser("127.0.0.3")
    thief.http.cookies.set("_dockyard_session", old_cookie)
    assert (await thief.get("/")).status_code == 303

    user = await User.get(id=owner.id)
    assert verify_password(user.password_hash, NEW_PASSWORD)
    live = await UserSession.filter(user_id=owner.id, ended_at=None).count()
    assert live == 1


async def test_a_wrong_current_password_changes_nothing(as_owner: Browser, owner: User) -> None:
    response = await as_owner.post(PAGE, change("not my password"))
    assert response.status_code == 400
    assert "The current password is wrong." in response.text
    assert "not my password" not in response.text and NEW_PASSWORD not in response.text
    user = await User.get(id=owner.id)
    assert verify_password(user.password_hash, PASSWORD)


async def test_the_new_password_must_be_strong_typed_twice_and_new(as_owner: Browser) -> None:
    cases = {
        "short": "Password must be at least 8 characters.",
        "olivia@example.com": "Password must not be your username or email address.",
        "password123": "Password is one of the most common passwords: choose another.",
        PASSWORD: "The new password must differ from the current one.",
    }
    for new, message in cases.items():
        response = await as_owner.post(PAGE, change(PASSWORD, new))
        assert response.status_code == 400, new
        assert message in response.text
    response = await as_owner.post(PAGE, change(PASSWORD, NEW_PASSWORD, "a brand new passphrasf"))
    assert "The new password and its confirmation do not match." in response.text


async def test_guessing_the_current_password_is_throttled(as_owner: Browser, owner: User) -> None:
    freeze_clock()  # the wait below is exact, however slow the machine
    for _ in range(5):
        assert (await as_owner.post(PAGE, change("guess!"))).status_code == 400
    response = await as_owner.post(PAGE, change(PASSWORD))  # even the right one waits
    assert response.status_code == 429
    assert response.headers["retry-after"] == "10"
    assert "Too many failed sign-in attempts: try again in 10 seconds." in response.text
    user = await User.get(id=owner.id)
    assert verify_password(user.password_hash, PASSWORD)


async def test_signed_out_people_are_sent_to_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get(PAGE)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/users/sign_in?redirect_to=")


async def test_the_session_record_notes_address_and_browser(
    make_browser: MakeBrowser, owner: User
) -> None:
    browser = await make_browser("127.0.0.9", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
    await browser.sign_in("olivia")
    (record,) = await user_sessions.list_live(owner)
    assert record.ip_address == "127.0.0.9"
    assert "Firefox/128.0" in record.user_agent
