"""Password hashing with argon2id; hashes are upgraded on login when parameters change."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 8
# argon2 takes any length; a cap keeps a pasted file from being hashed.
MAX_PASSWORD_LENGTH = 1024

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


@functools.cache
def _common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of public leaks, as zxcvbn ships them (lower case)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # 0.8 MB of lists: load on first use

    return frozenset(FREQUENCY_LISTS["passwords"])


def validate_password(password: str, *, username: str = "", email: str = "") -> str | None:
    """An error message for a password that is too weak, or None.

    GitLab's rules: a minimum length, not a very common password, and not the
    account's own name or email (the first things a guesser tries).
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"password must be at most {MAX_PASSWORD_LENGTH} characters"
    lowered = password.strip().lower()
    own = {username.strip().lower(), email.strip().lower(), email.strip().lower().split("@")[0]}
    if lowered in own - {""}:
        return "password must not be your username or email address"
    if lowered in _common_passwords():
        return "password is one of the most common passwords: choose another"
    return None
