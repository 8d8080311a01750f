"""Every form refuses a post without the session's CSRF token, whoever sends it."""

from __future__ import annotations

import pytest

from app.groups.models import Group
from tests.functional.web.conftest import Browser, make_user

FORMS = [
    "/users/sign_out",
    "/groups",
    "/groups/acme/-/dependency_proxy/clear_cache",
    "/groups/acme/-/settings/packages_and_registries",
    "/groups/acme/-/settings/packages_and_registries/ttl",
    "/groups/acme/-/settings/packages_and_registries/credentials",
    "/groups/acme/-/group_members",
    "/groups/acme/-/group_members/role",
    "/groups/acme/-/group_members/remove",
    "/groups/acme/-/group_members/deploy_tokens",
    "/groups/acme/-/group_members/deploy_tokens/revoke",
    "/-/user_settings/personal_access_tokens",
    "/-/user_settings/personal_access_tokens/revoke",
    "/-/user_settings/password/edit",
    "/-/user_settings/active_sessions/revoke",
    "/-/user_settings/active_sessions/revoke_others",
    "/admin/settings",
    "/admin/users",
    "/admin/users/action",
    "/admin/users/password",
]


@pytest.mark.parametrize("url", FORMS)
async def test_post_without_csrf_token_is_refused(
    as_owner: Browser, group: Group, url: str
) -> None:
    await make_user("ada", admin=True)
    response = await as_owner.http.post(url, data={"name": "x", "username": "gus"})
    assert response.status_code == 403
    assert "could not be verified" in response.text


async def test_token_from_another_session_is_refused(
    as_owner: Browser, as_guest: Browser, group: Group
) -> None:
    page = await as_guest.get("/")
    guest_token = page.text.split('name="authenticity_token" value="', 1)[1].split('"', 1)[0]
    response = await as_owner.http.post(
        "/groups/acme/-/dependency_proxy/clear_cache", data={"authenticity_token": guest_token}
    )
    assert response.status_code == 403
