"""Personal access tokens through their checked service: who may create, rotate, revoke,
and the instance's maximum lifetime."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app import clock
from app.accounts import authentication, personal_access_tokens, token_lifetime, user_sessions
from app.accounts import records as accounts
from app.accounts.principal import Principal
from app.errors import InsufficientScope, InvalidInput, NotFound, PermissionDenied

pytestmark = pytest.mark.usefixtures("database")
OPERATOR = Principal.operator()


async def signed_in(username: str, *, admin: bool = False) -> Principal:
    user = await accounts.create_user(
        username, f"{username}@example.com", f"{username}-password-1", is_admin=admin
    )
    session = await user_sessions.start(user, "127.0.0.1", "test")
    return Principal(user=user, session=session.record)


async def test_rotate_gives_a_new_secret_same_name_and_scopes_old_one_dead_at_once() -> None:
    alice = await signed_in("alice")
    later = clock.today() + timedelta(days=20)
    old = await personal_access_tokens.create_personal_access_token(
        alice, "ci", "read_registry,write_registry", later
    )
    new = await personal_access_tokens.rotate_personal_access_token(alice, "ci")
    assert new.secret != old.secret
    token = new.personal_access_token
    assert (token.name, token.scopes, token.expires_at) == (
        "ci",
        "read_registry,write_registry",
        later,
    )
    assert await authentication.authenticate_personal_access_token(old.secret) is None
    assert await authentication.authenticate_personal_access_token(new.secret) is not None
    with pytest.raises(NotFound):  # the old one is revoked: rotating it again finds nothing
        await personal_access_tokens.rotate_personal_access_token(
            alice, token_id=old.personal_access_token.id
        )


async def test_a_token_rotates_itself_with_api_but_cannot_mint_or_read_api_rotate() -> None:
    alice = await signed_in("alice")
    made = await personal_access_tokens.create_personal_access_token(alice, "script", "api")
    reader = await personal_access_tokens.create_personal_access_token(alice, "ro", "read_api")
    by_token = await authentication.authenticate_personal_access_token(made.secret)
    by_reader = await authentication.authenticate_personal_access_token(reader.secret)
    assert by_token is not None and by_reader is not None
    with pytest.raises(PermissionDenied, match="a token cannot do that"):
        await personal_access_tokens.create_personal_access_token(by_token, "more", "api")
    with pytest.raises(InsufficientScope):
        await personal_access_tokens.rotate_personal_access_token(by_reader, "script")
    assert len((await personal_access_tokens.personal_access_tokens_page(by_reader)).items) == 2
    rotated = await personal_access_tokens.rotate_personal_access_token(by_token, "script")
    assert rotated.personal_access_token.name == "script"


async def test_only_admins_and_the_operator_touch_other_people_s_tokens() -> None:
    alice, bob = await signed_in("alice"), await signed_in("bob")
    ada = await signed_in("ada", admin=True)
    await personal_access_tokens.create_personal_access_token(alice, "ci", "api")
    with pytest.raises(PermissionDenied):
        await personal_access_tokens.revoke_personal_access_token(bob, "ci", username="alice")
    with pytest.raises(PermissionDenied):
        await personal_access_tokens.rotate_personal_access_token(bob, "ci", username="alice")
    await personal_access_tokens.rotate_personal_access_token(ada, "ci", username="alice")
    await personal_access_tokens.revoke_personal_access_token(OPERATOR, "ci", username="alice")
    with pytest.raises(NotFound):
        await personal_access_tokens.create_personal_access_token(
            OPERATOR, "x", "api", username="nobody"
        )


async def test_maximum_lifetime_bounds_new_and_rotated_tokens_only() -> None:
    alice = await signed_in("alice")
    forever = await personal_access_tokens.create_personal_access_token(alice, "old", "api")
    assert forever.personal_access_token.expires_at is None
    with pytest.raises(PermissionDenied):
        await token_lifetime.set_max_lifetime(alice, 30)
    await token_lifetime.set_max_lifetime(OPERATOR, 30)
    latest = clock.today() + timedelta(days=30)
    made = await personal_access_tokens.create_personal_access_token(alice, "new", "api")
    assert made.personal_access_token.expires_at == latest  # none asked: the longest allowed
    with pytest.raises(InvalidInput, match=latest.isoformat()):
        await personal_access_tokens.create_personal_access_token(
            alice, "far", "api", latest + timedelta(days=1)
        )
    # The token made before the limit keeps working; rotated, it gets a bounded expiry.
    assert await authentication.authenticate_personal_access_token(forever.secret) is not None
    rotated = await personal_access_tokens.rotate_personal_access_token(alice, "old")
    assert rotated.personal_access_token.expires_at == latest
    await token_lifetime.set_max_lifetime(OPERATOR, None)
    assert await token_lifetime.max_lifetime_days() is None
    with pytest.raises(InvalidInput):
        await token_lifetime.set_max_lifetime(OPERATOR, 0)
