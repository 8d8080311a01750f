"""The admin area: administrators only; instance settings, users, groups with cache size."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest

from app.accounts import records as accounts
from app.accounts import token_lifetime
from app.accounts.models import User, UserState
from app.dependency_proxy.models import Blob
from app.groups import records as groups
from app.groups.models import Group
from app.instance.models import InstanceSetting
from tests.functional.web.conftest import Browser, make_user

MakeBrowser = Callable[[], Awaitable[Browser]]


@pytest.fixture
async def as_admin(make_browser: MakeBrowser, group: Group) -> Browser:
    await make_user("ada", admin=True)
    browser = await make_browser()
    await browser.sign_in("ada")
    return browser


async def test_non_admins_are_refused(as_owner: Browser) -> None:
    page = await as_owner.get("/admin")
    assert page.status_code == 403
    assert "for administrators only" in page.text
    response = await as_owner.post(
        "/admin/settings", {"registry_token_expire_minutes": "5"}, page="/"
    )
    assert response.status_code == 403
    assert "/admin" not in (await as_owner.get("/")).text


async def test_admin_sees_users_and_groups_with_cache_size(as_admin: Browser, group: Group) -> None:
    await Blob.create(
        group=group, digest="sha256:" + "a" * 64, size=3 * 1024 * 1024, read_at=group.created_at
    )
    page = await as_admin.get("/admin")
    assert page.status_code == 200
    for username in ("ada", "olivia", "gus"):
        assert f"<strong>{username}</strong>" in page.text
    assert ">acme</a>" in page.text and "3.00 MiB" in page.text
    assert 'href="/admin"' in page.text


async def test_admin_changes_instance_settings(as_admin: Browser) -> None:
    response = await as_admin.post(
        "/admin/settings", {"registry_token_expire_minutes": "30"}, page="/admin"
    )
    assert response.status_code == 303
    row = await InstanceSetting.get(id=1)
    assert row.dependency_proxy_enabled is False and row.registry_token_expire_minutes == 30
    response = await as_admin.post(
        "/admin/settings",
        {"dependency_proxy_enabled": "1", "registry_token_expire_minutes": "0"},
        page="/admin",
    )
    assert response.status_code == 400
    assert "Token lifetime must be between 1 and 1440." in response.text
    assert 'value="0"' in response.text


async def test_admin_creates_a_user(as_admin: Browser) -> None:
    response = await as_admin.post(
        "/admin/users",
        {"username": "newbie", "email": "newbie@example.com", "password": "a long password"},
        page="/admin",
    )
    assert response.status_code == 303
    assert await User.filter(username="newbie").exists()
    response = await as_admin.post(
        "/admin/users",
        {"username": "newbie", "email": "other@example.com", "password": "a long password"},
        page="/admin",
    )
    assert response.status_code == 400
    assert "already taken" in response.text and 'value="other@example.com"' in response.text
    assert "a long password" not in response.text


async def test_admin_blocks_unblocks_and_promotes(as_admin: Browser, owner: User) -> None:
    for action in ("block", "make_admin"):
        response = await as_admin.post(
            "/admin/users/action", {"username": "olivia", "action": action}, page="/admin"
        )
        assert response.status_code == 303
    await owner.refresh_from_db()
    assert owner.state == UserState.BLOCKED and owner.is_admin
    await as_admin.post(
        "/admin/users/action", {"username": "olivia", "action": "unblock"}, page="/admin"
    )
    await owner.refresh_from_db()
    assert owner.state == UserState.ACTIVE


async def test_admin_cannot_block_themselves(as_admin: Browser) -> None:
    await as_admin.post(
        "/admin/users/action", {"username": "ada", "action": "block"}, page="/admin"
    )
    page = await as_admin.get("/admin")
    assert "You cannot block yourself." in page.text
    assert (await User.get(username="ada")).state == UserState.ACTIVE


async def test_admin_resets_a_password_which_ends_the_users_sessions(
    as_admin: Browser, as_owner: Browser, owner: User
) -> None:
    admin_page = await as_admin.get("/admin")
    assert 'action="/admin/users/password"' in admin_page.text
    response = await as_admin.post(
        "/admin/users/password",
        {"username": "olivia", "password": "temporary passphrase", "require_change": "1"},
        page="/admin",
    )
    assert response.status_code == 303
    page = await as_admin.get("/admin")
    assert "Password of olivia was reset; their sessions were signed out." in page.text
    assert "temporary passphrase" not in page.text
    assert "password change pending" in page.text
    assert (await as_owner.get("/")).status_code == 303  # olivia's browser is signed out

    # At the next sign-in olivia is sent to the password page, and kept there.
    response = await as_owner.sign_in("olivia", "temporary passphrase")
    assert response.headers["location"] == "/-/user_settings/password/edit"
    response = await as_owner.get("/groups/acme/-/dependency_proxy")
    assert response.headers["location"] == "/-/user_settings/password/edit"
    form = {
        "current_password": "temporary passphrase",
        "new_password": "olivia's own passphrase",
        "password_confirmation": "olivia's own passphrase",
    }
    response = await as_owner.post("/-/user_settings/password/edit", form)
    assert response.headers["location"] == "/"
    assert (await as_owner.get("/")).status_code == 200
    assert not (await User.get(id=owner.id)).password_change_required


async def test_a_reset_without_the_requirement_and_a_weak_one(
    as_admin: Browser, as_owner: Browser, owner: User
) -> None:
    await as_admin.post(
        "/admin/users/password", {"username": "olivia", "password": "password1"}, page="/admin"
    )
    page = await as_admin.get("/admin")
    assert "Password of olivia not changed: Password is one of the most common" in page.text
    assert (await as_owner.get("/")).status_code == 200  # nothing happened to olivia

    await as_admin.post(
        "/admin/users/password",
        {"username": "olivia", "password": "set by the admin"},
        page="/admin",
    )
    assert not (await User.get(id=owner.id)).password_change_required
    response = await as_owner.sign_in("olivia", "set by the admin")
    assert response.headers["location"] == "/"


async def test_admins_reset_their_own_password_on_the_password_page(as_admin: Browser) -> None:
    await as_admin.post(
        "/admin/users/password", {"username": "ada", "password": "whatever works"}, page="/admin"
    )
    page = await as_admin.get("/admin")
    assert "Password of ada not changed: Change your own password on your password page." in (
        page.text
    )


async def test_users_and_groups_are_paged_and_searchable(as_admin: Browser) -> None:
    for index in range(22):
        await accounts.create_user(f"user{index:02}", f"u{index}@example.com", "a-long-password")
    await groups.create_group("zebra")
    first = await as_admin.get("/admin")
    assert "<strong>user15</strong>" in first.text  # users are listed oldest first
    assert "<strong>user19</strong>" not in first.text  # 20 a page: ada, olivia, gus, user00..16
    assert 'href="/admin?users_after=' in first.text
    next_url = first.text.split('href="/admin?users_after=', 1)[1].split('"', 1)[0]
    second = await as_admin.get("/admin?users_after=" + next_url.replace("&amp;", "&"))
    assert "<strong>user21</strong>" in second.text and "<strong>user00</strong>" not in second.text
    assert 'rel="prev"' in second.text
    found = await as_admin.get("/admin?users_q=user07")
    assert "<strong>user07</strong>" in found.text and "<strong>user08</strong>" not in found.text
    assert "<strong>ada</strong>" not in found.text
    by_email = await as_admin.get("/admin?users_q=u12@example")
    assert "<strong>user12</strong>" in by_email.text
    groups_found = await as_admin.get("/admin?groups_q=zeb")
    assert ">zebra</a>" in groups_found.text and ">acme</a>" not in groups_found.text
    # An edited cursor starts the list again rather than failing.
    assert (await as_admin.get("/admin?users_after=garbage")).status_code == 200


async def test_admin_sets_the_maximum_token_lifetime(as_admin: Browser) -> None:
    form = {"registry_token_expire_minutes": "15", "dependency_proxy_enabled": "1"}
    response = await as_admin.post(
        "/admin/settings", {**form, "max_token_lifetime_days": "30"}, page="/admin"
    )
    assert response.status_code == 303
    assert await token_lifetime.max_lifetime_days() == 30
    assert (
        'name="max_token_lifetime_days" type="number" min="1" max="400"'
        in (await as_admin.get("/admin")).text
    )
    bad = await as_admin.post(
        "/admin/settings", {**form, "max_token_lifetime_days": "999"}, page="/admin"
    )
    assert bad.status_code == 400
    assert "Maximum access token lifetime must be between 1 and 400." in bad.text
    await as_admin.post("/admin/settings", {**form, "max_token_lifetime_days": ""}, page="/admin")
    assert await token_lifetime.max_lifetime_days() is None


async def test_admin_page_says_when_requests_arrive_for_another_host(
    as_admin: Browser, make_browser: MakeBrowser
) -> None:
    assert 'id="external-url-mismatch"' not in (await as_admin.get("/admin")).text
    # Someone reaches Dockyard through a port forward, by a name the external URL lacks.
    forwarded = await make_browser()
    await forwarded.http.get("/users/sign_in", headers={"Host": "buildhost.lan:15240"})
    await forwarded.http.get("/users/sign_in", headers={"Host": "<b>x</b>"})  # no host name

    page = (await as_admin.get("/admin")).text
    notice = page.split('id="external-url-mismatch">', 1)[1].split("</div>", 1)[0]
    text = " ".join(re.sub(r"<[^>]+>", "", notice).split())
    assert text.startswith(
        "Requests arrive for buildhost.lan:15240, but the "
        "external URL is http://dockyard.test. docker is sent to the external URL to log in "
        "(http://dockyard.test/jwt/auth)"
    )
    assert "Set DOCKYARD_EXTERNAL_URL to the URL users reach" in text
    assert "<b>x</b>" not in page and "&lt;b&gt;" not in page
