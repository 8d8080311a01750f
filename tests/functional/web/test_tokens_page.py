"""Personal access tokens: created with scopes and expiry, shown once, listed, revoked."""

from __future__ import annotations

import re
from datetime import date, timedelta

from app import clock
from app.accounts import authentication, token_lifetime
from app.accounts import records as accounts
from app.accounts.models import PersonalAccessToken, User
from app.accounts.principal import Principal
from tests.functional.web.conftest import Browser

PAGE = "/-/user_settings/personal_access_tokens"


def secret_in(html: str) -> str:
    start = html.index('id="new-token"')
    return html[start:].split('value="', 1)[1].split('"', 1)[0]


async def test_token_is_shown_once_with_a_docker_login_line(as_owner: Browser, owner: User) -> None:
    response = await as_owner.post(
        PAGE, {"name": "laptop", "scopes": ["read_registry", "write_registry"]}
    )
    assert response.status_code == 200
    secret = secret_in(response.text)
    assert secret.startswith("dypat-")
    assert "docker login dockyard.test -u olivia --password-stdin" in response.text
    principal = await authentication.authenticate_personal_access_token(secret, "olivia")
    assert principal is not None and principal.may_use_dependency_proxy
    listing = await as_owner.get(PAGE)
    assert secret not in listing.text
    assert "laptop" in listing.text and "read_registry" in listing.text


async def test_token_with_expiry(as_owner: Browser) -> None:
    await as_owner.post(PAGE, {"name": "short", "scopes": ["api"], "expires_at": "2099-01-31"})
    token = await PersonalAccessToken.get(name="short")
    assert str(token.expires_at) == "2099-01-31" and token.scopes == "api"


async def test_bad_input_keeps_the_form_and_says_why(as_owner: Browser) -> None:
    response = await as_owner.post(PAGE, {"name": "ci", "scopes": []})
    assert response.status_code == 400
    assert "At least one scope is required." in response.text
    assert 'value="ci"' in response.text
    response = await as_owner.post(
        PAGE, {"name": "ci", "scopes": ["api"], "expires_at": "2001-01-01"}
    )
    assert response.status_code == 400
    assert "Expiry date must be in the future." in response.text
    assert 'value="2001-01-01"' in response.text
    assert await PersonalAccessToken.all().count() == 0


async def test_revoke(as_owner: Browser, owner: User) -> None:
    await accounts.create_personal_access_token(owner, "old", "api")
    response = await as_owner.post(PAGE + "/revoke", {"name": "old"}, page=PAGE)
    assert response.status_code == 303
    assert (await PersonalAccessToken.get(name="old")).revoked_at is not None
    page = await as_owner.get(PAGE)
    assert "Token old was revoked." in page.text and "revoked</span>" in page.text


async def test_one_cannot_revoke_someone_elses_token(as_guest: Browser, owner: User) -> None:
    await accounts.create_personal_access_token(owner, "mine", "api")
    await as_guest.post(PAGE + "/revoke", {"name": "mine"}, page=PAGE)
    assert (await PersonalAccessToken.get(name="mine")).revoked_at is None


async def test_expired_token_is_marked(as_owner: Browser, owner: User) -> None:
    created = await accounts.create_personal_access_token(owner, "old", "api")
    token = created.personal_access_token
    token.expires_at = date(2001, 1, 1)
    await token.save(update_fields=["expires_at"])
    page = await as_owner.get(PAGE)
    assert "expired</span>" in page.text and "Revoke token old" not in page.text


async def test_rotate_shows_the_new_secret_once_and_kills_the_old(
    as_owner: Browser, owner: User
) -> None:
    old = await accounts.create_personal_access_token(owner, "laptop", "api")
    response = await as_owner.post(PAGE + "/rotate", {"name": "laptop"}, page=PAGE)
    assert response.status_code == 200
    assert "Your rotated personal access token" in response.text
    new_secret = secret_in(response.text)
    assert new_secret.startswith("dypat-") and new_secret != old.secret
    assert await authentication.authenticate_personal_access_token(old.secret) is None
    assert await authentication.authenticate_personal_access_token(new_secret) is not None
    assert new_secret not in (await as_owner.get(PAGE)).text


async def test_the_maximum_lifetime_shapes_the_form(as_owner: Browser) -> None:
    await token_lifetime.set_max_lifetime(Principal.operator(), 7)
    page = await as_owner.get(PAGE)
    assert "At most 7 days from today on this instance" in page.text
    response = await as_owner.post(
        PAGE, {"name": "long", "scopes": ["api"], "expires_at": "2999-01-01"}
    )
    assert response.status_code == 400 and "Tokens must expire within 7 days" in response.text
    await as_owner.post(PAGE, {"name": "default", "scopes": ["api"]})
    token = await PersonalAccessToken.get(name="default")
    assert token.expires_at == clock.today() + timedelta(days=7)


def checked_scopes(html: str) -> list[str]:
    return re.findall(r'name="scopes" value="([a-z_]+)" checked', html)


async def test_nothing_is_pre_checked_and_presets_work_without_scripts(as_owner: Browser) -> None:
    page = await as_owner.get(PAGE)
    assert checked_scopes(page.text) == []
    for preset, scopes in (
        ("docker", ["read_registry", "write_registry"]),
        ("scripts", ["api"]),
        ("monitoring", ["read_api"]),
        ("nonsense", []),
    ):
        page = await as_owner.get(f"{PAGE}?preset={preset}")
        assert page.status_code == 200
        assert checked_scopes(page.text) == scopes, preset
    # Each preset is a link that works without scripts, and names its scopes for the script.
    assert 'href="?preset=scripts#new-token-form" data-preset-scopes="api"' in page.text
