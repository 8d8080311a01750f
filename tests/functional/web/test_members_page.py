"""Members and deploy tokens: Owners manage them, secrets shown once, inherited marked."""

from __future__ import annotations

from app.accounts.models import DeployToken, User
from app.groups import records as groups
from app.groups.models import AccessLevel, Group, Membership
from tests.functional.web.conftest import Browser, make_user

PAGE = "/groups/acme/-/group_members"


async def test_members_are_listed_with_roles_and_inherited_marked(
    as_guest: Browser, group: Group
) -> None:
    await groups.create_group("acme/sub")
    page = await as_guest.get("/groups/acme/sub/-/group_members")
    assert page.status_code == 200
    assert "olivia" in page.text and "gus" in page.text
    assert page.text.count("inherited</span> from") == 2
    assert "Invite a member" not in page.text and "Deploy tokens" not in page.text


async def test_owner_adds_changes_and_removes_a_member(as_owner: Browser, group: Group) -> None:
    await make_user("dave")
    response = await as_owner.post(PAGE, {"username": "dave", "role": "developer"})
    assert response.status_code == 303
    dave = await Membership.get(group_id=group.id, user__username_key="dave")
    assert dave.access_level == AccessLevel.DEVELOPER
    assert "dave is now Developer of acme." in (await as_owner.get(PAGE)).text

    await as_owner.post(PAGE + "/role", {"username": "dave", "role": "maintainer"}, page=PAGE)
    await dave.refresh_from_db()
    assert dave.access_level == AccessLevel.MAINTAINER

    response = await as_owner.post(PAGE + "/remove", {"username": "dave"}, page=PAGE)
    assert response.status_code == 303
    assert not await Membership.filter(group_id=group.id, user__username_key="dave").exists()


async def test_unknown_user_keeps_the_form(as_owner: Browser, group: Group) -> None:
    response = await as_owner.post(PAGE, {"username": "nobody", "role": "reporter"})
    assert response.status_code == 400
    assert "User &#39;nobody&#39; not found." in response.text
    assert 'value="nobody"' in response.text
    assert '<option value="reporter" selected>' in response.text


async def test_last_owner_cannot_be_removed_or_demoted(as_owner: Browser, group: Group) -> None:
    response = await as_owner.post(PAGE + "/remove", {"username": "olivia"}, page=PAGE)
    assert response.status_code == 400
    assert "A group must keep at least one Owner." in response.text
    response = await as_owner.post(
        PAGE + "/role", {"username": "olivia", "role": "guest"}, page=PAGE
    )
    assert response.status_code == 400
    membership = await Membership.get(group_id=group.id, user__username_key="olivia")
    assert membership.access_level == AccessLevel.OWNER


async def test_guest_cannot_manage_members(as_guest: Browser, group: Group, guest: User) -> None:
    for url, data in (
        (PAGE, {"username": "gus", "role": "owner"}),
        (PAGE + "/role", {"username": "gus", "role": "owner"}),
        (PAGE + "/remove", {"username": "olivia"}),
        (PAGE + "/deploy_tokens", {"name": "x", "scopes": ["read_registry"]}),
    ):
        response = await as_guest.post(url, data, page=PAGE)
        assert response.status_code == 403, url
    membership = await Membership.get(group_id=group.id, user_id=guest.id)
    assert membership.access_level == AccessLevel.GUEST
    assert await DeployToken.all().count() == 0


async def test_deploy_token_secret_is_shown_once(as_owner: Browser, group: Group) -> None:
    response = await as_owner.post(
        PAGE + "/deploy_tokens",
        {"name": "ci", "scopes": ["read_registry", "write_registry"]},
        page=PAGE,
    )
    assert response.status_code == 200
    assert "Copy the token now." in response.text
    token = await DeployToken.get(name="ci")
    secret_start = response.text.index('id="deploy-token-secret"')
    secret = response.text[secret_start:].split('value="', 1)[1].split('"', 1)[0]
    assert secret.startswith("dydt-")
    assert f"docker login dockyard.test -u {token.username} --password-stdin" in response.text
    later = await as_owner.get(PAGE)
    assert secret not in later.text and token.username in later.text


async def test_deploy_token_errors_keep_the_form(as_owner: Browser, group: Group) -> None:
    response = await as_owner.post(
        PAGE + "/deploy_tokens", {"name": "ci", "expires_at": "tomorrow"}, page=PAGE
    )
    assert response.status_code == 400
    assert "Expiry date must be a date like 2030-12-31." in response.text
    assert 'id="deploy-name" name="name" type="text" required value="ci"' in response.text
    # Both registry scopes are offered checked (a deploy token has no other use); a
    # form with both unchecked is refused on the page, not saved as an empty token.
    page = await as_owner.get(PAGE)
    assert page.text.count('name="scopes" value="read_registry" checked') == 1
    assert page.text.count('name="scopes" value="write_registry" checked') == 1
    response = await as_owner.post(PAGE + "/deploy_tokens", {"name": "ci"}, page=PAGE)
    assert response.status_code == 400
    assert "At least one scope is required." in response.text
    assert await DeployToken.all().count() == 0


async def test_owner_revokes_a_deploy_token(as_owner: Browser, group: Group) -> None:
    await as_owner.post(
        PAGE + "/deploy_tokens", {"name": "ci", "scopes": ["read_registry"]}, page=PAGE
    )
    response = await as_owner.post(PAGE + "/deploy_tokens/revoke", {"name": "ci"}, page=PAGE)
    assert response.status_code == 303
    assert (await DeployToken.get(name="ci")).revoked_at is not None
    assert "Deploy token ci was revoked." in (await as_owner.get(PAGE)).text


async def test_members_are_paged_and_searchable(as_guest: Browser, group: Group) -> None:
    for index in range(21):
        user = await make_user(f"member{index:02}")
        await groups.add_member(group, user, AccessLevel.REPORTER)
    first = await as_guest.get(PAGE)
    assert "@member17" in first.text and "@member18" not in first.text  # 20 a page
    assert 'rel="next"' in first.text and "members_after=" in first.text
    next_url = first.text.split('rel="next" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    second = await as_guest.get(next_url)
    assert "@member20" in second.text and "@member00" not in second.text
    found = await as_guest.get(PAGE + "?members_q=member05")
    assert "@member05" in found.text and "@member06" not in found.text
