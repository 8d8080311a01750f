"""Every credential check: a password (always behind the throttle), a token, what
`docker login` sends, and the principal behind a registry JWT.

Every surface that checks a password (the sign-in form, `/jwt/auth`, the
password page's current password) comes through here with a `PasswordCheck`
saying where the attempt comes from; the throttle counts it in the database
before the password is looked at. Tokens are 32 random bytes: guessing them is
hopeless, so they are not throttled, and a wrong token never counts as a
password guess against an account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from app import clock, metrics
from app.accounts import passwords, throttle
from app.accounts import records as accounts
from app.accounts.errors import TooManyAttempts
from app.accounts.models import DeployToken, PersonalAccessToken, User
from app.accounts.principal import Principal
from app.accounts.records import token_is_live
from app.accounts.secrets import (
    DEPLOY_TOKEN_PREFIX,
    GROUP_ACCESS_TOKEN_PREFIX,
    PERSONAL_ACCESS_TOKEN_PREFIX,
    digests_equal,
    secret_digest,
)
from app.accounts.throttle import ThrottlePolicy
from app.config import Settings

# last_used_at is refreshed at most this often, so a busy CI token does not
# cost a database write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
TOKEN_PREFIXES = (PERSONAL_ACCESS_TOKEN_PREFIX, GROUP_ACCESS_TOKEN_PREFIX)


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
    """What `docker login` sends: a deploy token, a personal or group access token
    (any username for a group access token, as GitLab accepts), or a password."""
    if secret.startswith(DEPLOY_TOKEN_PREFIX):
        return await authenticate_deploy_token(username, secret)
    if secret.startswith(GROUP_ACCESS_TOKEN_PREFIX):
        return await authenticate_personal_access_token(secret)
    if secret.startswith(PERSONAL_ACCESS_TOKEN_PREFIX):
        return await authenticate_personal_access_token(secret, username=username)
    user = await authenticate_password(username, secret, check)
    return Principal(user=user) if user is not None else None


async def authenticate_personal_access_token(
    secret: str, username: str | None = None
) -> Principal | None:
    """The principal behind a personal (`dypat-`) or group access token (`dygat-`), or None.

    With `username`, a personal token must belong to that user (registry logins
    send both); GitLab's `PRIVATE-TOKEN` header sends the secret alone.
    """
    if not secret.startswith(TOKEN_PREFIXES):
        return None
    digest = secret_digest(secret)
    token = await PersonalAccessToken.get_or_none(token_digest=digest).select_related("user")
    if token is None or not digests_equal(token.token_digest, digest):
        return None
    if not token_is_live(token) or not token.user.is_active:
        return None
    if username is not None and token.user.username_key != username.strip().lower():
        return None
    await _touch(token)
    return Principal(user=token.user, scopes=token.scope_set, personal_access_token=token)


async def authenticate_deploy_token(username: str, secret: str) -> Principal | None:
    token = await DeployToken.get_or_none(username=username.strip()).select_related("group")
    if token is None or not digests_equal(token.token_digest, secret_digest(secret)):
        return None
    if not token_is_live(token):
        return None
    await _touch(token)
    return Principal(scopes=token.scope_set, deploy_token=token)


async def load_principal(kind: str, ident: int, version: int | None = None) -> Principal | None:
    """Look the principal behind a registry JWT up again, so revocation bites at once.

    A token obtained with a password names the user's credentials version: a
    password change, a reset or "sign out everywhere" has moved it on since.
    """
    if kind == "user":
        user = await User.get_or_none(id=ident)
        if user is None or not user.is_active or user.is_bot:
            return None
        if version != user.credentials_version:  # a token without one is not ours either
            return None
        return Principal(user=user)
    if kind == "personal_access_token":
        token = await PersonalAccessToken.get_or_none(id=ident).select_related("user")
        if token is None or not token_is_live(token) or not token.user.is_active:
            return None
        return Principal(user=token.user, scopes=token.scope_set, personal_access_token=token)
    if kind == "deploy_token":
        deploy = await DeployToken.get_or_none(id=ident).select_related("group")
        if deploy is None or not token_is_live(deploy):
            return None
        return Principal(scopes=deploy.scope_set, deploy_token=deploy)
    return None


async def _touch(token: PersonalAccessToken | DeployToken) -> None:
    now = clock.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        await type(token).filter(id=token.id).update(last_used_at=now)
