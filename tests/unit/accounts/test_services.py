from datetime import UTC, date, datetime, timedelta

import pytest

from app import clock
from app.accounts import authentication
from app.accounts import records as services
from app.accounts.models import PersonalAccessToken, UserState
from app.accounts.secrets import secret_digest
from app.errors import AlreadyExists, InvalidInput
from app.groups import deploy_tokens
from app.groups import records as groups
from tests.support.operator import OPERATOR
from tests.unit.accounts.checks import CHECK

pytestmark = pytest.mark.usefixtures("database")


async def test_password_login_by_username_or_email_any_case() -> None:
    user = await services.create_user("Alice", "Alice@Example.com", "alice-password")
    assert (
        await authentication.authenticate_password("alice", "alice-password", CHECK)
    ).id == user.id
    assert (
        await authentication.authenticate_password("ALICE@example.com", "alice-password", CHECK)
    ).id == user.id
    assert await authentication.authenticate_password("alice", "wrong-password", CHECK) is None
    assert await authentication.authenticate_password("nobody", "alice-password", CHECK) is None


async def test_usernames_and_emails_are_unique_regardless_of_case() -> None:
    await services.create_user("alice", "alice@example.com", "alice-password")
    with pytest.raises(AlreadyExists):
        await services.create_user("ALICE", "other@example.com", "alice-password")
    with pytest.raises(AlreadyExists):
        await services.create_user("bob", "ALICE@example.com", "alice-password")


async def test_bad_user_input_is_refused() -> None:
    with pytest.raises(InvalidInput, match="at least 8"):
        await services.create_user("alice", "alice@example.com", "short")
    with pytest.raises(InvalidInput, match="email"):
        await services.create_user("alice", "not-an-email", "alice-password")
    with pytest.raises(InvalidInput, match="username"):
        await services.create_user("-alice", "alice@example.com", "alice-password")


async def test_blocked_user_cannot_log_in_with_password_or_token() -> None:
    user = await services.create_user("alice", "alice@example.com", "alice-password")
    created = await services.create_personal_access_token(user, "ci", "api")
    await services.set_state(user, UserState.BLOCKED)
    assert await authentication.authenticate_password("alice", "alice-password", CHECK) is None
    assert await authentication.authenticate("alice", created.secret, CHECK) is None
    assert await authentication.load_principal("user", user.id, user.credentials_version) is None


async def test_token_secret_is_stored_only_as_a_hash_and_has_a_prefix() -> None:
    user = await services.create_user("alice", "alice@example.com", "alice-password")
    created = await services.create_personal_access_token(
        user, "ci", "read_registry,write_registry"
    )
    assert created.secret.startswith("dypat-")
    row = await PersonalAccessToken.get(id=created.personal_access_token.id)
    assert row.token_digest == secret_digest(created.secret)
    assert created.secret not in repr(row.__dict__)
    principal = await authentication.authenticate("alice", created.secret, CHECK)
    assert principal is not None and principal.scopes == {"read_registry", "write_registry"}


async def test_token_of_another_user_does_not_authenticate_as_me() -> None:
    alice = await services.create_user("alice", "alice@example.com", "alice-password")
    await services.create_user("bob", "bob@example.com", "bob-password")
    created = await services.create_personal_access_token(alice, "ci", "api")
    assert await authentication.authenticate("bob", created.secret, CHECK) is None
    assert await authentication.authenticate_personal_access_token(created.secret) is not None


async def test_revoked_token_fails_at_once() -> None:
    user = await services.create_user("alice", "alice@example.com", "alice-password")
    created = await services.create_personal_access_token(user, "ci", "api")
    await services.revoke_personal_access_token(user, "ci")
    assert await authentication.authenticate("alice", created.secret, CHECK) is None
    assert (
        await authentication.load_principal(
            "personal_access_token", created.personal_access_token.id
        )
        is None
    )


async def test_token_expires_at_the_start_of_its_expiry_day() -> None:
    user = await services.create_user("alice", "alice@example.com", "alice-password")
    created = await services.create_personal_access_token(
        user, "ci", "api", expires_at=clock.today() + timedelta(days=2)
    )
    assert await authentication.authenticate("alice", created.secret, CHECK) is not None
    later = datetime.combine(clock.today() + timedelta(days=2), datetime.min.time(), UTC)
    clock.set_clock(lambda: later)
    assert await authentication.authenticate("alice", created.secret, CHECK) is None


async def test_token_input_is_validated() -> None:
    user = await services.create_user("alice", "alice@example.com", "alice-password")
    with pytest.raises(InvalidInput, match="unknown scope"):
        await services.create_personal_access_token(user, "ci", "sudo")
    with pytest.raises(InvalidInput, match="future"):
        await services.create_personal_access_token(user, "ci", "api", expires_at=date(2000, 1, 1))
    await services.create_personal_access_token(user, "ci", "api")
    with pytest.raises(AlreadyExists):
        await services.create_personal_access_token(user, "ci", "api")


async def test_deploy_token_authenticates_by_its_username_and_can_be_revoked() -> None:
    group = await groups.create_group("acme")
    created = await deploy_tokens.create_deploy_token(
        OPERATOR, group, "ci", "read_registry,write_registry"
    )
    assert created.username == f"dockyard+deploy-token-{created.deploy_token.id}"
    principal = await authentication.authenticate(created.username, created.secret, CHECK)
    assert principal is not None and principal.deploy_token is not None
    assert await authentication.authenticate("someone-else", created.secret, CHECK) is None
    await deploy_tokens.revoke_deploy_token(OPERATOR, group, "ci")
    assert await authentication.authenticate(created.username, created.secret, CHECK) is None
    with pytest.raises(InvalidInput):
        await deploy_tokens.create_deploy_token(OPERATOR, group, "x", "api")


async def test_last_used_time_is_recorded() -> None:
    user = await services.create_user("alice", "alice@example.com", "alice-password")
    created = await services.create_personal_access_token(user, "ci", "api")
    await authentication.authenticate("alice", created.secret, CHECK)
    row = await PersonalAccessToken.get(id=created.personal_access_token.id)
    assert row.last_used_at is not None
