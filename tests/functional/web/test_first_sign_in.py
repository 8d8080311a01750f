"""Root's first sign-in leads to the password page; tokens and the registry are unaffected."""

from __future__ import annotations

import base64

import httpx

from app.accounts import records as accounts
from app.accounts.models import User
from app.config import Settings
from app.instance.services import ensure_root_user
from tests.functional.web.conftest import Browser, MakeBrowser

PAGE = "/-/user_settings/password/edit"


async def test_roots_first_sign_in_leads_to_the_password_page(
    make_browser: MakeBrowser, client: httpx.AsyncClient, settings: Settings
) -> None:
    first = await ensure_root_user(settings)
    assert first is not None and first.root.password_change_required
    browser: Browser = await make_browser()
    response = await browser.sign_in("root", first.password)
    assert response.status_code == 303 and response.headers["location"] == PAGE
    page = await browser.get(PAGE)
    assert "Set a new password before you continue" in page.text

    for elsewhere in ("/", "/admin", "/-/user_settings/personal_access_tokens"):
        response = await browser.get(elsewhere)
        assert response.status_code == 303 and response.headers["location"] == PAGE, elsewhere
    # A form elsewhere does nothing either (CSRF token valid, still sent to the page).
    response = await browser.post("/groups", {"path": "sneaky"}, page=PAGE)
    assert response.headers["location"] == PAGE

    form = {
        "current_password": first.password,
        "new_password": "root's chosen passphrase",
        "password_confirmation": "root's chosen passphrase",
    }
    response = await browser.post(PAGE, form)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert (await browser.get("/admin")).status_code == 200
    assert not (await User.get(username="root")).password_change_required


async def test_the_requirement_leaves_tokens_and_the_registry_alone(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    first = await ensure_root_user(settings)
    assert first is not None
    token = (await accounts.create_personal_access_token(first.root, "script", "api")).secret
    answer = await client.post(
        "/api/graphql",
        json={"query": "{ currentUser { username } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.json()["data"] == {"currentUser": {"username": "root"}}
    basic = base64.b64encode(f"root:{first.password}".encode()).decode()
    answer = await client.get(
        "/jwt/auth",
        params={"service": "dependency_proxy"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert answer.status_code == 200 and answer.json()["token"]
