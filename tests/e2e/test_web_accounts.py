"""Passwords and sessions in a real browser (Debian's chromium driven by Playwright):
root's first sign-in, changing a password, seeing and ending sessions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.web_support import (
    PASSWORD,
    browser,
    new_page,
    require_chromium,
    screenshot,
    sign_in,
)
from tests.support.dockyard_server import DockyardServer

pytestmark = pytest.mark.e2e
__all__ = ["browser", "new_page"]  # fixtures used by name below

PASSWORD_PAGE = "/-/user_settings/password/edit"
SESSIONS_PAGE = "/-/user_settings/active_sessions"


@pytest.fixture(scope="module")
def dockyard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    """A fresh Dockyard (first start: root is created); nothing here pulls an image."""
    require_chromium()
    server = DockyardServer(tmp_path_factory.mktemp("dockyard"), "http://127.0.0.1:9")
    with server:
        yield server


def accept_dialogs(page: Any) -> None:
    page.on("dialog", lambda dialog: dialog.accept())


def test_roots_first_sign_in_leads_to_the_password_page(
    dockyard: DockyardServer, new_page: Any
) -> None:
    text = (dockyard.data_dir / "initial_root_password").read_text()
    initial = re.search(r"^Password: (\S+)$", text, re.M)
    assert initial, text
    page = new_page()
    sign_in(page, "root", initial.group(1))
    page.wait_for_url(dockyard.url + PASSWORD_PAGE)
    notice = page.locator("#password-change-required").inner_text()
    assert "Set a new password before you continue" in notice
    screenshot(page, "first-sign-in")
    page.goto("/admin")  # every other page waits for the new password
    page.wait_for_url(dockyard.url + PASSWORD_PAGE)

    page.fill("#current-password", initial.group(1))
    page.fill("#new-password", "root's own passphrase")
    page.fill("#password-confirmation", "root's own passphrase")
    page.click("button:has-text('Save password')")
    page.wait_for_url(dockyard.url + "/")
    assert "Password changed." in page.locator(".flash").inner_text()
    page.goto("/admin")
    assert page.locator("h1").inner_text() == "Admin area"


def test_sessions_are_listed_revoked_and_ended_by_a_password_change(
    dockyard: DockyardServer, new_page: Any
) -> None:
    dockyard.user("paula", PASSWORD)
    laptop, phone = new_page(), new_page(mobile=True)
    accept_dialogs(laptop)
    for page in (laptop, phone):
        sign_in(page, "paula")
        page.wait_for_url(dockyard.url + "/")

    laptop.click("nav.topnav a:has-text('Sessions')")
    laptop.wait_for_url(dockyard.url + SESSIONS_PAGE)
    rows = laptop.locator(".session-row")
    assert rows.count() == 2
    current = laptop.locator(".session-row.current")
    assert "This session" in current.inner_text()
    assert "Chrome on Linux" in current.inner_text() and "127.0.0.1" in current.inner_text()
    screenshot(laptop, "active-sessions")

    laptop.locator(".session-row:not(.current) button:has-text('Revoke')").click()
    assert "The session was revoked" in laptop.locator(".flash").inner_text()
    assert laptop.locator(".session-row").count() == 1
    phone.reload()
    assert "/users/sign_in" in phone.url  # the phone is signed out

    sign_in(phone, "paula")
    phone.wait_for_url(dockyard.url + "/")
    laptop.reload()
    laptop.click("button:has-text('Sign out everywhere else')")
    assert "Signed out everywhere else (1 session)." in laptop.locator(".flash").inner_text()
    phone.reload()
    assert "/users/sign_in" in phone.url

    sign_in(phone, "paula")
    phone.wait_for_url(dockyard.url + "/")
    laptop.click("nav.tabs a:has-text('Password')")
    laptop.wait_for_url(dockyard.url + PASSWORD_PAGE)
    laptop.fill("#current-password", "not my password")
    laptop.fill("#new-password", "paula's next passphrase")
    laptop.fill("#password-confirmation", "paula's next passphrase")
    laptop.click("button:has-text('Save password')")
    assert laptop.locator(".form-error").inner_text() == "The current password is wrong."
    assert laptop.input_value("#current-password") == ""  # never written back
    laptop.fill("#current-password", PASSWORD)
    laptop.fill("#new-password", "paula's next passphrase")
    laptop.fill("#password-confirmation", "paula's next passphrase")
    laptop.click("button:has-text('Save password')")
    assert "Every other session of yours was signed out." in laptop.locator(".flash").inner_text()
    phone.reload()
    assert "/users/sign_in" in phone.url
    laptop.goto(SESSIONS_PAGE)  # the laptop stays signed in, on one session
    assert laptop.locator(".session-row").count() == 1
