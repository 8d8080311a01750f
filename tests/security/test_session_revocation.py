"""A session cookie copied before sign-out, a password change or a block is worth
nothing afterwards: not for pages, not for GraphQL, not for creating a token."""

from __future__ import annotations

import itertools

import pytest

from tests.security.accounts_support import (
    ATTACKER_ADDRESS,
    PASSWORD,
    WebClient,
    server,
    web,
)
from tests.support.dockyard_server import DockyardServer

__all__ = ["server", "web"]  # fixtures used by name below
TOKENS = "/-/user_settings/personal_access_tokens"
_names = itertools.count()


@pytest.fixture
def victim(server: DockyardServer) -> str:
    name = f"victim{next(_names)}"
    server.user(name, PASSWORD)
    return name


def replay(cookie: str, server: DockyardServer, web: type[WebClient]) -> WebClient:
    """An attacker's client holding a copy of the victim's cookie."""
    thief = web(ATTACKER_ADDRESS)
    thief.http.cookies.set("_dockyard_session", cookie, domain="127.0.0.1")
    return thief


def assert_worthless(
    cookie: str, server: DockyardServer, web: type[WebClient], victim: str, csrf: str
) -> None:
    """The copied cookie, sent as it was copied on every request (the server's answers
    clear it, but an attacker keeps replaying the copy), opens nothing."""
    assert replay(cookie, server, web).http.get("/").status_code == 303  # sent to sign in
    # A token creation with the CSRF token from the copied cookie: right token, dead session.
    answer = replay(cookie, server, web).http.post(
        TOKENS, data={"authenticity_token": csrf, "name": "stolen", "scopes": "api"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/users/sign_in")
    assert [token["name"] for token in server.cli("token", "list", victim)["tokens"]] == []
    query = {"query": "{ currentUser { username } }"}
    answer = replay(cookie, server, web).http.post(
        "/api/graphql", json=query, headers={"X-CSRF-Token": csrf}
    )
    assert answer.json()["data"] == {"currentUser": None}


def signed_in_copy(
    server: DockyardServer, web: type[WebClient], victim: str
) -> tuple[WebClient, str, str]:
    browser = web()
    assert browser.sign_in(victim).status_code == 303
    csrf = browser.csrf(TOKENS)
    cookie = browser.cookie
    # Before anything happens, the copy works (so the tests below can fail).
    assert replay(cookie, server, web).signed_in()
    return browser, cookie, csrf


def test_a_cookie_copied_before_sign_out_is_dead(
    server: DockyardServer, web: type[WebClient], victim: str
) -> None:
    browser, cookie, csrf = signed_in_copy(server, web, victim)
    assert browser.post("/users/sign_out", {}, page="/").status_code == 303
    assert_worthless(cookie, server, web, victim, csrf)


def test_a_cookie_copied_before_a_password_change_on_the_page_is_dead(
    server: DockyardServer, web: type[WebClient], victim: str
) -> None:
    browser, cookie, csrf = signed_in_copy(server, web, victim)
    other, other_cookie, _ = signed_in_copy(server, web, victim)
    form = {
        "current_password": PASSWORD,
        "new_password": "a whole new passphrase",
        "password_confirmation": "a whole new passphrase",
    }
    assert browser.post("/-/user_settings/password/edit", form).status_code == 303
    assert browser.signed_in()  # the browser that changed it stays signed in
    assert not other.signed_in()
    assert_worthless(cookie, server, web, victim, csrf)
    assert not replay(other_cookie, server, web).signed_in()


def test_a_cookie_copied_before_dockyard_user_set_password_is_dead(
    server: DockyardServer, web: type[WebClient], victim: str
) -> None:
    browser, cookie, csrf = signed_in_copy(server, web, victim)
    server.cli("user", "set-password", victim, "--password-stdin", stdin="set by the operator\n")
    assert not browser.signed_in()
    assert_worthless(cookie, server, web, victim, csrf)


def test_a_cookie_copied_before_a_block_stays_dead_after_unblocking(
    server: DockyardServer, web: type[WebClient], victim: str
) -> None:
    _, cookie, csrf = signed_in_copy(server, web, victim)
    server.cli("user", "block", victim)
    server.cli("user", "unblock", victim)
    assert_worthless(cookie, server, web, victim, csrf)


def test_a_revoked_session_and_sign_out_everywhere_else(
    server: DockyardServer, web: type[WebClient], victim: str
) -> None:
    browser, _, _ = signed_in_copy(server, web, victim)
    _, second, _ = signed_in_copy(server, web, victim)
    _, third, _ = signed_in_copy(server, web, victim)
    page = browser.http.get("/-/user_settings/active_sessions").text
    assert page.count('class="session-row') == 3
    assert (
        browser.post(
            "/-/user_settings/active_sessions/revoke_others",
            {},
            page="/-/user_settings/active_sessions",
        ).status_code
        == 303
    )
    assert browser.signed_in()
    assert not replay(second, server, web).signed_in()
    assert not replay(third, server, web).signed_in()
