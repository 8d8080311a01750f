"""Users, personal access tokens and deploy tokens: create, change, authenticate tokens.

Every authentication helper fails closed: blocked users, expired or revoked
tokens, and unknown names all give None, in about the same time. Passwords are
checked in `authentication` (behind the throttle).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from tortoise.exceptions import IntegrityError

from app import clock
from app.accounts import passwords, user_sessions
from app.accounts.models import DeployToken, PersonalAccessToken, User, UserState
from app.accounts.principal import ALL_SCOPES, DEPLOY_TOKEN_SCOPES, Principal
from app.accounts.secrets import (
    DEPLOY_TOKEN_PREFIX,
    PERSONAL_ACCESS_TOKEN_PREFIX,
    digests_equal,
    new_secret,
    secret_digest,
)
from app.errors import AlreadyExists, InvalidInput, NotFound
from app.groups.models import Group
from app.groups.paths import username_error

# last_used_at is refreshed at most this often, so a busy CI token does not
# cost a database write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class CreatedToken:
    """A freshly created token: `secret` is shown once and never stored."""

    secret: str
    personal_access_token: PersonalAccessToken


@dataclass(frozen=True)
class CreatedDeployToken:
    secret: str
    deploy_token: DeployToken

    @property
    def username(self) -> str:
        return self.deploy_token.username


def parse_scopes(text: str | list[str] | tuple[str, ...], allowed: frozenset[str]) -> list[str]:
    items = text.split(",") if isinstance(text, str) else list(text)
    scopes = sorted({item.strip() for item in items if item.strip()})
    if not scopes:
        raise InvalidInput("at least one scope is required")
    unknown = [scope for scope in scopes if scope not in allowed]
    if unknown:
        raise InvalidInput(f"unknown scope {unknown[0]!r}: use {', '.join(sorted(allowed))}")
    return scopes


def check_expiry(expires_at: date | None) -> None:
    if expires_at is not None and expires_at <= clock.today():
        raise InvalidInput("expiry date must be in the future")


def token_is_live(token: PersonalAccessToken | DeployToken) -> bool:
    if token.revoked_at is not None:
        return False
    return token.expires_at is None or token.expires_at > clock.today()


# --- users -----------------------------------------------------------------


async def create_user(
    username: str,
    email: str,
    password: str,
    *,
    name: str = "",
    is_admin: bool = False,
    password_change_required: bool = False,
) -> User:
    if error := username_error(username):
        raise InvalidInput(error)
    email = email.strip()
    if "@" not in email or email.startswith("@") or email.endswith("@") or " " in email:
        raise InvalidInput(f"email {email!r} is not a valid address")
    if error := passwords.validate_password(password, username=username, email=email):
        raise InvalidInput(error)
    if await User.filter(username_key=username.lower()).exists():
        raise AlreadyExists(f"username {username!r} is already taken")
    if await User.filter(email=email.lower()).exists():
        raise AlreadyExists(f"email {email!r} is already taken")
    try:
        return await User.create(
            username=username,
            username_key=username.lower(),
            email=email.lower(),
            name=name or username,
            password_hash=passwords.hash_password(password),
            is_admin=is_admin,
            password_change_required=password_change_required,
        )
    except IntegrityError:
        raise AlreadyExists(f"username {username!r} or email is already taken") from None


async def find_user(username: str) -> User | None:
    return await User.get_or_none(username_key=username.strip().lower())


async def get_user(username: str) -> User:
    user = await find_user(username)
    if user is None:
        raise NotFound(f"user {username!r} not found")
    return user


async def list_users() -> list[User]:
    return await User.all().order_by("username_key")


async def find_user_by_login(login: str) -> User | None:
    """The user a sign-in form's login names: an email (with an @) or a username."""
    login = login.strip().lower()
    user = await User.get_or_none(email=login) if "@" in login else None
    return user or await User.get_or_none(username_key=login)


async def set_state(user: User, state: UserState) -> User:
    user.state = state
    await user.save(update_fields=["state", "updated_at"])
    if state == UserState.BLOCKED:
        # Unblocking must not bring old sessions back: they end now.
        await user_sessions.end_all(user, user_sessions.EndReason.BLOCKED)
    return user


async def set_admin(user: User, is_admin: bool) -> User:
    user.is_admin = is_admin
    await user.save(update_fields=["is_admin", "updated_at"])
    return user


async def set_password(user: User, password: str, *, require_change: bool = False) -> User:
    """Set a new password and end every session of the user (a copied cookie dies too).

    `require_change`: the user must choose their own at the next sign-in (an
    administrator's reset); otherwise a pending requirement is cleared.
    """
    if error := passwords.validate_password(password, username=user.username, email=user.email):
        raise InvalidInput(error)
    user.password_hash = passwords.hash_password(password)
    user.password_change_required = require_change
    await user.save(update_fields=["password_hash", "password_change_required", "updated_at"])
    await user_sessions.end_all(user, user_sessions.EndReason.PASSWORD_CHANGED)
    return user


# --- personal access tokens --------------------------------------------------


async def create_personal_access_token(
    user: User, name: str, scopes: str | list[str], expires_at: date | None = None
) -> CreatedToken:
    if not name.strip():
        raise InvalidInput("token name can't be blank")
    scope_list = parse_scopes(scopes, ALL_SCOPES)
    check_expiry(expires_at)
    if await PersonalAccessToken.filter(user=user, name=name, revoked_at=None).exists():
        raise AlreadyExists(f"{user.username} already has an active token named {name!r}")
    secret = new_secret(PERSONAL_ACCESS_TOKEN_PREFIX)
    token = await PersonalAccessToken.create(
        user=user,
        name=name.strip(),
        token_digest=secret_digest(secret),
        scopes=",".join(scope_list),
        expires_at=expires_at,
    )
    return CreatedToken(secret=secret, personal_access_token=token)


async def list_personal_access_tokens(user: User) -> list[PersonalAccessToken]:
    return await PersonalAccessToken.filter(user=user).order_by("-created_at", "-id")


async def revoke_personal_access_token(user: User, name: str) -> PersonalAccessToken:
    token = await PersonalAccessToken.filter(user=user, name=name, revoked_at=None).first()
    if token is None:
        raise NotFound(f"{user.username} has no active token named {name!r}")
    token.revoked_at = clock.now()
    await token.save(update_fields=["revoked_at"])
    return token


async def authenticate_personal_access_token(
    secret: str, username: str | None = None
) -> Principal | None:
    """The principal behind a personal access token, or None.

    With `username`, the token must belong to that user (registry logins send
    both); GitLab's `PRIVATE-TOKEN` header sends the secret alone.
    """
    if not secret.startswith(PERSONAL_ACCESS_TOKEN_PREFIX):
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


# --- deploy tokens -------------------------------------------------------------


async def create_deploy_token(
    group: Group,
    name: str,
    scopes: str | list[str],
    expires_at: date | None = None,
    username: str | None = None,
) -> CreatedDeployToken:
    if not name.strip():
        raise InvalidInput("deploy token name can't be blank")
    scope_list = parse_scopes(scopes, DEPLOY_TOKEN_SCOPES)
    check_expiry(expires_at)
    if username is not None and (error := username_error(username)):
        raise InvalidInput(error)
    if await DeployToken.filter(group=group, name=name, revoked_at=None).exists():
        raise AlreadyExists(f"{group.full_path} already has an active deploy token named {name!r}")
    secret = new_secret(DEPLOY_TOKEN_PREFIX)
    try:
        token = await DeployToken.create(
            group=group,
            name=name.strip(),
            # A placeholder until the id is known; '+' keeps it apart from usernames.
            username=username or f"pending+{secret_digest(secret)[:16]}",
            token_digest=secret_digest(secret),
            scopes=",".join(scope_list),
            expires_at=expires_at,
        )
    except IntegrityError:
        raise AlreadyExists(f"deploy token username {username!r} is already taken") from None
    if username is None:
        token.username = f"dockyard+deploy-token-{token.id}"
        await token.save(update_fields=["username"])
    return CreatedDeployToken(secret=secret, deploy_token=token)


async def list_deploy_tokens(group: Group) -> list[DeployToken]:
    return await DeployToken.filter(group=group).order_by("-created_at", "-id")


async def revoke_deploy_token(group: Group, name: str) -> DeployToken:
    token = await DeployToken.filter(group=group, name=name, revoked_at=None).first()
    if token is None:
        raise NotFound(f"{group.full_path} has no active deploy token named {name!r}")
    token.revoked_at = clock.now()
    await token.save(update_fields=["revoked_at"])
    return token


async def authenticate_deploy_token(username: str, secret: str) -> Principal | None:
    token = await DeployToken.get_or_none(username=username.strip()).select_related("group")
    if token is None or not digests_equal(token.token_digest, secret_digest(secret)):
        return None
    if not token_is_live(token):
        return None
    await _touch(token)
    return Principal(scopes=token.scope_set, deploy_token=token)


# --- principals behind registry JWTs -------------------------------------------------


async def load_principal(kind: str, ident: int) -> Principal | None:
    """Look the principal behind a registry JWT up again, so revocation bites at once."""
    if kind == "user":
        user = await User.get_or_none(id=ident)
        return Principal(user=user) if user is not None and user.is_active else None
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
        await token.save(update_fields=["last_used_at"])
