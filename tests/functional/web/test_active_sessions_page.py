"""Active sessions: a person sees where they are signed in and ends sessions."""

from __future__ import annotations

import re

from app.accounts.models import User, UserSession
from tests.functional.web.conftest import Browser, MakeBrowser, make_user

PAGE = "/-/user_settings/active_sessions"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def rows(html: str) -> list[str]:
    return re.findall(r'<tr class="session-row[^"]*">.*?</tr>', html, re.S)


async def signed_in_twice(make_browser: MakeBrowser) -> tuple[Browser, Browser]:
    laptop = await make_browser("127.0.0.1", FIREFOX)
    phone = await make_browser("127.0.0.2", SAFARI)
    assert (await laptop.sign_in("olivia")).status_code == 303
    assert (await phone.sign_in("olivia")).status_code == 303
    return laptop, phone


async def test_sessions_are_listed_with_browser_address_and_this_session_marked(
    make_browser: MakeBrowser, owner: User
) -> None:
    laptop, _ = await signed_in_twice(make_browser)
    page = await laptop.get(PAGE)
    assert page.status_code == 200
    listed = rows(page.text)
    assert len(listed) == 2
    (mine,) = [row for row in listed if "This session" in row]
    assert "Firefox on Linux" in mine and "127.0.0.1" in mine and "Revoke" not in mine
    (other,) = [row for row in listed if "This session" not in row]
    assert "Safari on iOS" in other and "127.0.0.2" in other and "Revoke" in other
    assert "just now" in other
    # Nothing secret is rendered: no session id or digest.
    for record in await UserSession.filter(user_id=owner.id):
        assert record.session_digest not in page.text


async def test_revoking_a_session_signs_that_browser_out(
    make_browser: MakeBrowser, owner: User
) -> None:
    laptop, phone = await signed_in_twice(make_browser)
    phone_session = await UserSession.get(user_id=owner.id, ip_address="127.0.0.2")
    response = await laptop.post(f"{PAGE}/revoke", {"id": str(phone_session.id)}, page=PAGE)
    assert response.status_code == 303
    assert "The session was revoked" in (await laptop.get(PAGE)).text
    assert (await phone.get("/")).status_code == 303
    assert (await laptop.get("/")).status_code == 200
    assert len(rows((await laptop.get(PAGE)).text)) == 1


async def test_sign_out_everywhere_else(make_browser: MakeBrowser, owner: User) -> None:
    laptop, phone = await signed_in_twice(make_browser)
    tablet = await make_browser("127.0.0.3")
    await tablet.sign_in("olivia")
    response = await laptop.post(f"{PAGE}/revoke_others", {}, page=PAGE)
    assert response.status_code == 303
    assert "Signed out everywhere else (2 sessions)." in (await laptop.get(PAGE)).text
    assert (await phone.get("/")).status_code == 303
    assert (await tablet.get("/")).status_code == 303
    assert (await laptop.get("/")).status_code == 200


async def test_nobody_revokes_someone_elses_session(
    make_browser: MakeBrowser, as_owner: Browser, owner: User
) -> None:
    await make_user("mallory")
    mallory = await make_browser("127.0.0.5")
    await mallory.sign_in("mallory")
    olivias = await UserSession.get(user_id=owner.id, ended_at=None)
    response = await mallory.post(f"{PAGE}/revoke", {"id": str(olivias.id)}, page=PAGE)
    assert response.status_code == 303
    assert "That session has already ended." in (await mallory.get(PAGE)).text
    assert (await as_owner.get("/")).status_code == 200
    response = await mallory.post(f"{PAGE}/revoke", {"id": "not-a-number"}, page=PAGE)
    assert response.status_code == 303
