"""Password hashing with argon2id; hashes are upgraded on login when parameters change."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()

# A hash of a random password, checked when the user does not exist, so that
# "no such user" and "wrong password" take the same time.
_DUMMY_HASH = _hasher.hash("dockyard-dummy-password")


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    return (hasher or _hasher).hash(password)


def verify_password(
    password_hash: str, password: str, hasher: PasswordHasher | None = None
) -> bool:
    try:
        return (hasher or _hasher).verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str, hasher: PasswordHasher | None = None) -> bool:
    try:
        return (hasher or _hasher).check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def burn_time(password: str) -> None:
    """Spend a verification's time for an unknown user."""
    verify_password(_DUMMY_HASH, password)


def validate_password(password: str) -> str | None:
    """An error message for a password that is too weak, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password must be at least {MIN_PASSWORD_LENGTH} characters"
    return None
