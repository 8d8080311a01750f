"""A group's access tokens page (`/groups/<path>/-/settings/access_tokens`): Owners create
(secret shown once), list with last use, and revoke; nobody else sees it."""

from __future__ import annotations

from app.accounts import authentication
from app.accounts.models import PersonalAccessToken
from app.groups.models import Group, Membership
from tests.functional.web.conftest import Browser
from tests.unit.accounts.checks import CHECK

PAGE = "/groups/acme/-/settings/access_tokens"


def secret_in(html: str) -> str:
    start = html.index('id="new-group-token"')
    return html[start:].split('value="', 1)[1].split('"', 1)[0]


async def test_owner_creates_a_token_shown_once_that_pulls_as_a_bot_member(
    as_owner: Browser, group: Group
) -> None:
    page = await as_owner.get(PAGE)
    assert page.status_code == 200 and "Group access tokens" in page.text
    response = await as_owner.post(
        PAGE,
        {
            "name": "ci",
            "role": "reporter",
            "scopes": ["read_registry", "write_registry"],
            "expires_at": "2999-01-01",
        },
    )
    assert response.status_code == 200
    secret = secret_in(response.text)
    assert secret.startswith("dygat-") and "Copy the token now." in response.text
    assert "docker login dockyard.test -u group_" in response.text
    principal = await authentication.authenticate("any-name", secret, CHECK)
    assert principal is not None and principal.is_bot
    bot = await Membership.get(group_id=group.id, user_id=principal.user.id)
    assert bot.access_level == 20
    listing = await as_owner.get(PAGE)
    assert secret not in listing.text
    assert "<strong>ci</strong>" in listing.text and "Reporter" in listing.text
    assert "2999-01-01" in listing.text
    # The members page shows the bot, marked as such, without role or remove controls.
    members = await as_owner.get("/groups/acme/-/group_members")
    assert ">bot</span>" in members.text


async def test_owner_revokes_and_bad_input_keeps_the_form(as_owner: Browser, group: Group) -> None:
    response = await as_owner.post(PAGE, {"name": "ci", "role": "guest", "scopes": []})
    assert response.status_code == 400
    assert "At least one scope is required." in response.text
    assert 'value="ci"' in response.text
    await as_owner.post(PAGE, {"name": "ci", "role": "guest", "scopes": ["read_api"]})
    answer = await as_owner.post(PAGE + "/revoke", {"name": "ci"}, page=PAGE)
    assert answer.status_code == 303
    assert (await PersonalAccessToken.get(name="ci")).revoked_at is not None
    page = await as_owner.get(PAGE)
    assert "Access token ci was revoked" in page.text and ">revoked</span>" in page.text
    # A revoked token's bot is gone from the members list.
    assert ">bot</span>" not in (await as_owner.get("/groups/acme/-/group_members")).text


async def test_guests_get_the_access_denied_page_and_nothing_is_made(
    as_guest: Browser, group: Group
) -> None:
    assert (await as_guest.get(PAGE)).status_code == 403
    response = await as_guest.post(
        PAGE, {"name": "mine", "role": "owner", "scopes": ["api"]}, page="/groups/acme"
    )
    assert response.status_code == 403
    assert await PersonalAccessToken.all().count() == 0
