"""Checking a password, always behind the throttle, and any credential `docker login` sends.

Every surface that checks a password (the sign-in form, `/jwt/auth`, the
password page's current password) comes through here with a `PasswordCheck`
saying where the attempt comes from; the throttle counts it in the database
before the password is looked at. Tokens are 32 random bytes: guessing them is
hopeless, so they are not throttled, and a wrong token never counts as a
password guess against an account.
"""

from __future__ import annotations

from dataclasses import dataclass

from app import metrics
from app.accounts import passwords, throttle
from app.accounts import services as accounts
from app.accounts.errors import TooManyAttempts
from app.accounts.models import User
from app.accounts.principal import Principal
from app.accounts.secrets import DEPLOY_TOKEN_PREFIX, PERSONAL_ACCESS_TOKEN_PREFIX
from app.accounts.throttle import ThrottlePolicy
from app.config import Settings


@dataclass(frozen=True)
class PasswordCheck:
    """Where a password check comes from: the client's address (as the app sees it,
    trusted proxies honoured), the surface (the metric's label), and the limits."""

    address: str
    surface: str
    policy: ThrottlePolicy

    @classmethod
    def of(cls, settings: Settings, address: str, surface: str) -> PasswordCheck:
        return cls(address=address, surface=surface, policy=ThrottlePolicy.from_settings(settings))


async def _reserve(account: str, check: PasswordCheck) -> throttle.Reservation:
    try:
        return await throttle.reserve(account, check.address, check.policy)
    except TooManyAttempts:
        metrics.auth_throttled.labels(check.surface).inc()
        raise


async def authenticate_password(login: str, password: str, check: PasswordCheck) -> User | None:
    """The active user with this username (or email) and password, or None.

    Raises TooManyAttempts while the throttle holds this account or address back
    (the password is then not checked at all). Rehashes the password when the
    argon2 parameters have changed.
    """
    user = await accounts.find_user_by_login(login)
    reservation = await _reserve(throttle.account_key(user, login), check)
    if user is None:
        passwords.burn_time(password)  # "no such user" takes as long as "wrong password"
        return None
    if not passwords.verify_password(user.password_hash, password) or not user.is_active:
        return None
    await throttle.succeeded(reservation)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
        await user.save(update_fields=["password_hash"])
    return user


async def verify_current_password(user: User, password: str, check: PasswordCheck) -> bool:
    """The password page's check of the signed-in user's current password (throttled:
    a borrowed session must not become a way to guess it)."""
    reservation = await _reserve(throttle.account_key(user, ""), check)
    if not passwords.verify_password(user.password_hash, password):
        return False
    await throttle.succeeded(reservation)
    return True


async def authenticate(username: str, secret: str, check: PasswordCheck) -> Principal | None:
    """What `docker login` sends: a deploy token, a personal access token or a password."""
    if secret.startswith(DEPLOY_TOKEN_PREFIX):
        return await accounts.authenticate_deploy_token(username, secret)
    if secret.startswith(PERSONAL_ACCESS_TOKEN_PREFIX):
        return await accounts.authenticate_personal_access_token(secret, username=username)
    user = await authenticate_password(username, secret, check)
    return Principal(user=user) if user is not None else None
