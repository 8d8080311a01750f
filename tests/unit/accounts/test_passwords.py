import pytest
from argon2 import PasswordHasher

from app.accounts import authentication, passwords
from app.accounts import records as services
from app.accounts.models import User
from tests.unit.accounts.checks import CHECK


def test_hash_is_argon2id_and_verifies() -> None:
    hashed = passwords.hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert passwords.verify_password(hashed, "correct horse")
    assert not passwords.verify_password(hashed, "wrong horse")


def test_garbage_hash_never_verifies() -> None:
    assert not passwords.verify_password("not-a-hash", "anything")


def test_weak_hash_parameters_need_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    assert passwords.needs_rehash(weak.hash("pw"))
    assert not passwords.needs_rehash(passwords.hash_password("pw"))


async def test_login_rehashes_a_hash_made_with_old_parameters(database: object) -> None:
    user = await services.create_user("alice", "alice@example.com", "alice-password")
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    user.password_hash = weak.hash("alice-password")
    await user.save()

    assert await authentication.authenticate_password("alice", "alice-password", CHECK) is not None

    reloaded = await User.get(id=user.id)
    assert reloaded.password_hash != user.password_hash
    assert not passwords.needs_rehash(reloaded.password_hash)
    assert passwords.verify_password(reloaded.password_hash, "alice-password")


@pytest.mark.parametrize(
    ("password", "error"),
    [
        ("short", "at least 8 characters"),
        ("x" * 1025, "at most 1024 characters"),
        ("alice-smith", "not be your username or email"),
        ("ALICE@EXAMPLE.COM", "not be your username or email"),
        ("alice@example.com", "not be your username or email"),
        ("password1", "most common passwords"),
        ("Qwertyuiop", "most common passwords"),
        ("iloveyou123", "most common passwords"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password: str, error: str) -> None:
    message = passwords.validate_password(
        password, username="alice-smith", email="alice@example.com"
    )
    assert message is not None and error in message


@pytest.mark.parametrize("password", ["correct horse battery staple", "alice-smith-2030!"])
def test_reasonable_passwords_pass(password: str) -> None:
    assert (
        passwords.validate_password(password, username="alice-smith", email="a@example.com") is None
    )
