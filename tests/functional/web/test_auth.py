"""Sign in and sign out: good and bad passwords, throttling, blocked users, redirects."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from app import clock
from app.accounts import records as accounts
from app.accounts.models import User, UserState
from tests.functional.web.conftest import PASSWORD, Browser, csrf_of


def freeze_clock() -> None:
    frozen = clock.now()
    clock.set_clock(lambda: frozen)


MakeBrowser = Callable[[], Awaitable[Browser]]


async def test_pages_send_signed_out_people_to_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/groups/acme/-/dependency_proxy?after=x")
    assert response.status_code == 303
    assert response.headers["location"] == (
        "/users/sign_in?redirect_to=/groups/acme/-/dependency_proxy%3Fafter%3Dx"
    )


async def test_sign_in_with_username_then_email(make_browser: MakeBrowser, owner: User) -> None:
    browser = await make_browser()
    response = await browser.sign_in("olivia")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    page = await browser.get("/")
    assert "olivia" in page.text and "Sign out" in page.text

    other = await make_browser()
    assert (await other.sign_in("OLIVIA@example.com")).status_code == 303


async def test_bad_password_keeps_the_login_and_says_so(
    make_browser: MakeBrowser, owner: User
) -> None:
    browser = await make_browser()
    response = await browser.sign_in("olivia", "wrong password!")
    assert response.status_code == 401
    assert "Invalid login or password." in response.text
    assert 'value="olivia"' in response.text
    assert (await browser.get("/")).status_code == 303  # still signed out


async def test_failed_attempts_are_throttled_per_account(
    make_browser: MakeBrowser, owner: User
) -> None:
    freeze_clock()  # the wait below is exact, however slow the machine
    browser = await make_browser()
    for _ in range(5):
        assert (await browser.sign_in("olivia", "wrong password!")).status_code == 401
    response = await browser.sign_in("olivia")  # even the right password waits now
    assert response.status_code == 429
    assert "Too many failed sign-in attempts: try again in 10 seconds." in response.text
    assert response.headers["retry-after"] == "10"
    assert 'value="olivia"' in response.text  # the form keeps the login


async def test_failed_attempts_are_throttled_per_client_address(
    make_browser: MakeBrowser, client: httpx.AsyncClient
) -> None:
    browser = await make_browser()
    for number in range(30):
        assert (await browser.sign_in(f"nobody{number}", "wrong password!")).status_code == 401
    assert (await browser.sign_in("someone-else", "wrong password!")).status_code == 429


async def test_a_good_sign_in_resets_the_count(make_browser: MakeBrowser, owner: User) -> None:
    browser = await make_browser()
    for _ in range(4):
        await browser.sign_in("olivia", "wrong password!")
    assert (await browser.sign_in("olivia")).status_code == 303
    other = await make_browser()
    for _ in range(4):  # four more failures are allowed again
        assert (await other.sign_in("olivia", "wrong password!")).status_code == 401
    assert (await other.sign_in("olivia")).status_code == 303


async def test_blocked_user_cannot_sign_in_and_is_signed_out(
    make_browser: MakeBrowser, owner: User
) -> None:
    browser = await make_browser()
    assert (await browser.sign_in("olivia")).status_code == 303
    await accounts.set_state(owner, UserState.BLOCKED)
    assert (await browser.get("/")).status_code == 303  # the session no longer counts
    response = await browser.sign_in("olivia", PASSWORD)
    assert response.status_code == 401


async def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_site(
    make_browser: MakeBrowser, owner: User
) -> None:
    browser = await make_browser()
    page = await browser.get("/users/sign_in?redirect_to=/-/user_settings/personal_access_tokens")
    response = await browser.http.post(
        "/users/sign_in",
        data={
            "authenticity_token": csrf_of(page.text),
            "login": "olivia",
            "password": PASSWORD,
            "redirect_to": "/-/user_settings/personal_access_tokens",
        },
    )
    assert response.headers["location"] == "/-/user_settings/personal_access_tokens"

    other = await make_browser()
    page = await other.get("/users/sign_in")
    response = await other.http.post(
        "/users/sign_in",
        data={
            "authenticity_token": csrf_of(page.text),
            "login": "olivia",
            "password": PASSWORD,
            "redirect_to": "//evil.example/",
        },
    )
    assert response.headers["location"] == "/"


async def test_sign_in_without_csrf_token_is_refused(
    client: httpx.AsyncClient, owner: User
) -> None:
    response = await client.post("/users/sign_in", data={"login": "olivia", "password": PASSWORD})
    assert response.status_code == 403
    assert "could not be verified" in response.text


async def test_sign_out(as_owner: Browser) -> None:
    response = await as_owner.post("/users/sign_out", {}, page="/")
    assert response.status_code == 303
    assert response.headers["location"] == "/users/sign_in"
    assert (await as_owner.get("/")).status_code == 303


async def test_sign_out_needs_the_csrf_token(as_owner: Browser) -> None:
    response = await as_owner.http.post("/users/sign_out")
    assert response.status_code == 403
    assert (await as_owner.get("/")).status_code == 200  # still signed in
