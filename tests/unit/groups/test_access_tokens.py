"""Group access tokens: a bot member of one group, with a role, scopes and an expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app import clock
from app.accounts import authentication, token_lifetime
from app.accounts import records as accounts
from app.accounts.models import User, UserState
from app.accounts.principal import Principal
from app.accounts.secrets import secret_digest
from app.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from app.groups import access_tokens, policy, services
from app.groups import records as groups
from app.groups.models import AccessLevel
from tests.unit.accounts.checks import CHECK

pytestmark = pytest.mark.usefixtures("database")
OWNER = "olga-password"


async def world() -> tuple:
    acme = await groups.create_group("acme")
    platform = await groups.create_group("acme/platform")
    other = await groups.create_group("other")
    olga = await accounts.create_user("olga", "olga@example.com", OWNER)
    gina = await accounts.create_user("gina", "gina@example.com", "gina-password")
    await groups.add_member(acme, olga, AccessLevel.OWNER)
    await groups.add_member(acme, gina, AccessLevel.GUEST)
    return acme, platform, other, Principal(user=olga), Principal(user=gina)


async def test_a_token_acts_as_a_bot_member_of_its_group_and_subgroups_only() -> None:
    acme, platform, other, owner, _ = await world()
    created = await access_tokens.create_group_access_token(
        owner, acme, "ci", "developer", ["read_registry", "write_registry"]
    )
    assert created.secret.startswith("dygat-")
    row = created.group_access_token.token
    assert row.token_digest == secret_digest(created.secret)  # stored hashed
    # docker login: any username is accepted with a group access token.
    bot = await authentication.authenticate("anything", created.secret, CHECK)
    assert bot is not None and bot.is_bot and bot.kind == "group_access_token"
    assert await policy.access_level(bot.user, acme) == AccessLevel.DEVELOPER
    assert await policy.can_pull(bot, acme) and await policy.can_pull(bot, platform)
    assert not await policy.can_pull(bot, other)
    # The bot has no password and is nobody's to add elsewhere.
    assert await authentication.authenticate_password(bot.user.username, "", CHECK) is None
    with pytest.raises(InvalidInput, match="not found"):
        await services.set_member(owner, acme, bot.user.username, "owner")


async def test_only_owners_create_list_and_revoke_and_not_above_their_role() -> None:
    acme, _, _, owner, guest = await world()
    with pytest.raises(PermissionDenied):
        await access_tokens.create_group_access_token(guest, acme, "mine", "owner", "api")
    with pytest.raises(PermissionDenied):
        await access_tokens.group_access_tokens_page(guest, acme)
    assert await User.filter(user_type="group_bot").count() == 0  # nothing was created
    created = await access_tokens.create_group_access_token(owner, acme, "ci", "owner", "api")
    with pytest.raises(AlreadyExists):
        await access_tokens.create_group_access_token(owner, acme, "ci", "guest", "api")
    page = await access_tokens.group_access_tokens_page(owner, acme)
    assert [(item.token.name, item.access_level) for item in page.items] == [
        ("ci", AccessLevel.OWNER)
    ]
    with pytest.raises(PermissionDenied):
        await access_tokens.revoke_group_access_token(guest, acme, "ci")
    revoked = await access_tokens.revoke_group_access_token(owner, acme, "ci")
    assert revoked.token.revoked_at is not None
    assert await authentication.authenticate_personal_access_token(created.secret) is None
    bot = await User.get(id=revoked.token.user.id)
    assert bot.state == UserState.BLOCKED
    with pytest.raises(InvalidInput, match="no active access token"):
        await access_tokens.revoke_group_access_token(owner, acme, "ci")


async def test_a_maintainer_token_cannot_be_made_by_a_lower_role() -> None:
    acme, _, _, _, _ = await world()
    mia = await accounts.create_user("mia", "mia@example.com", "mia-password-1")
    await groups.add_member(acme, mia, AccessLevel.MAINTAINER)
    # Maintainers may not manage tokens at all (Owner only): refused before the role check.
    with pytest.raises(PermissionDenied):
        await access_tokens.create_group_access_token(
            Principal(user=mia), acme, "x", "guest", "api"
        )


async def test_bad_input_is_refused_before_a_bot_exists() -> None:
    acme, _, _, owner, _ = await world()
    for scopes in ("", "sudo"):
        with pytest.raises(InvalidInput):
            await access_tokens.create_group_access_token(owner, acme, "ci", "guest", scopes)
    with pytest.raises(InvalidInput):
        await access_tokens.create_group_access_token(owner, acme, " ", "guest", "api")
    with pytest.raises(InvalidInput):
        await access_tokens.create_group_access_token(owner, acme, "ci", "admin", "api")
    yesterday = clock.today() - timedelta(days=1)
    with pytest.raises(InvalidInput):
        await access_tokens.create_group_access_token(owner, acme, "ci", "guest", "api", yesterday)
    assert await User.filter(user_type="group_bot").count() == 0


async def test_the_maximum_lifetime_applies_to_group_tokens() -> None:
    acme, _, _, owner, _ = await world()
    await token_lifetime.set_max_lifetime(Principal.operator(), 30)
    created = await access_tokens.create_group_access_token(owner, acme, "ci", "guest", "api")
    assert created.group_access_token.token.expires_at == clock.today() + timedelta(days=30)
    with pytest.raises(InvalidInput, match="within 30 days"):
        await access_tokens.create_group_access_token(
            owner, acme, "ci2", "guest", "api", clock.today() + timedelta(days=31)
        )


async def test_a_token_of_another_group_cannot_be_revoked_through_this_one() -> None:
    acme, _, other, owner, _ = await world()
    await groups.add_member(other, owner.user, AccessLevel.OWNER)
    await access_tokens.create_group_access_token(owner, other, "ci", "guest", "api")
    with pytest.raises(InvalidInput):
        await access_tokens.revoke_group_access_token(owner, acme, "ci")
    with pytest.raises(NotFound):
        stranger = await accounts.create_user("sam", "sam@example.com", "sam-password-1")
        await access_tokens.revoke_group_access_token(Principal(user=stranger), acme, "ci")


async def test_a_group_token_cannot_create_more_tokens() -> None:
    acme, _, _, owner, _ = await world()
    created = await access_tokens.create_group_access_token(owner, acme, "ops", "owner", "api")
    bot = await authentication.authenticate_personal_access_token(created.secret)
    assert bot is not None and await policy.can_administer(bot, acme)
    with pytest.raises(PermissionDenied, match="cannot create access tokens"):
        await access_tokens.create_group_access_token(bot, acme, "more", "owner", "api")
