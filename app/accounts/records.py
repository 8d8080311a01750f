"""The accounts domain's records: users, personal access tokens and deploy tokens, created,
found and changed *without* asking who wants it.

Only the domain's checked services (`users`, `personal_access_tokens`,
`app.groups.deploy_tokens`, ...) and test fixtures call these; surfaces and the
CLI go through the checked services with their principal (the architecture
contracts forbid surfaces to import this module). Credentials are checked in
`authentication` (passwords behind the throttle, tokens by digest).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from app import clock
from app.accounts import passwords, user_sessions
from app.accounts.models import (
    DeployToken,
    PersonalAccessToken,
    User,
    UserSession,
    UserState,
    UserType,
)
from app.accounts.principal import ALL_SCOPES, DEPLOY_TOKEN_SCOPES
from app.accounts.secrets import (
    DEPLOY_TOKEN_PREFIX,
    PERSONAL_ACCESS_TOKEN_PREFIX,
    new_secret,
    secret_digest,
)
from app.errors import AlreadyExists, InvalidInput, NotFound
from app.namespaces import username_error
from app.pagination import Page, paginate


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
    return token.is_live


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


async def find_person(username: str) -> User | None:
    """A person (never a group's bot) by username: whom a group may add as a member."""
    user = await find_user(username)
    return user if user is not None and not user.is_bot else None


async def get_user(username: str) -> User:
    user = await find_user(username)
    if user is None:
        raise NotFound(f"user {username!r} not found")
    return user


def users_query(search: str | None = None, *, include_bots: bool = False) -> QuerySet[User]:
    """Users whose username, name or email contains `search` (people only, unless asked)."""
    query = User.all() if include_bots else User.filter(user_type=UserType.HUMAN)
    if search and search.strip():
        text = search.strip()
        query = query.filter(
            Q(username_key__icontains=text.lower())
            | Q(name__icontains=text)
            | Q(email__icontains=text.lower())
        )
    return query


async def list_users(search: str | None = None) -> list[User]:
    return await users_query(search).order_by("username_key")


async def users_page(search: str | None = None, **page: Any) -> Page[User]:
    """One keyset page of people, oldest first (`first`/`after`, `last`/`before`)."""
    return await paginate(users_query(search), newest_first=False, **page)


async def find_user_by_login(login: str) -> User | None:
    """The person a sign-in form's login names: an email (with an @) or a username.
    Bots have no password and never sign in."""
    login = login.strip().lower()
    user = await User.get_or_none(email=login) if "@" in login else None
    user = user or await User.get_or_none(username_key=login)
    return user if user is not None and not user.is_bot else None


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
    await end_sessions_and_password_tokens(user, user_sessions.EndReason.PASSWORD_CHANGED)
    return user


async def end_sessions_and_password_tokens(
    user: User, reason: user_sessions.EndReason, *, keep: UserSession | None = None
) -> int:
    """End the user's web sessions (but `keep`) and every registry token obtained with
    their password: the credentials version moves on, and such tokens carry the old one.
    Returns how many sessions ended."""
    await User.filter(id=user.id).update(credentials_version=F("credentials_version") + 1)
    await user.refresh_from_db(fields=["credentials_version"])
    return await user_sessions.end_all(user, reason, keep=keep)


# --- personal access tokens (people's, and group bots') ------------------------------


async def create_personal_access_token(
    user: User,
    name: str,
    scopes: str | list[str],
    expires_at: date | None = None,
    *,
    prefix: str = PERSONAL_ACCESS_TOKEN_PREFIX,
) -> CreatedToken:
    if not name.strip():
        raise InvalidInput("token name can't be blank")
    scope_list = parse_scopes(scopes, ALL_SCOPES)
    check_expiry(expires_at)
    if await PersonalAccessToken.filter(user=user, name=name, revoked_at=None).exists():
        raise AlreadyExists(f"{user.username} already has an active token named {name!r}")
    secret = new_secret(prefix)
    token = await PersonalAccessToken.create(
        user=user,
        name=name.strip(),
        token_digest=secret_digest(secret),
        scopes=",".join(scope_list),
        expires_at=expires_at,
    )
    return CreatedToken(secret=secret, personal_access_token=token)


def personal_access_tokens_query(user_id: int) -> QuerySet[PersonalAccessToken]:
    return PersonalAccessToken.filter(user_id=user_id)


async def list_personal_access_tokens(user: User) -> list[PersonalAccessToken]:
    return await PersonalAccessToken.filter(user=user).order_by("-created_at", "-id")


async def find_active_token(user: User, name: str) -> PersonalAccessToken:
    token = await PersonalAccessToken.filter(user=user, name=name, revoked_at=None).first()
    if token is None:
        raise NotFound(f"{user.username} has no active token named {name!r}")
    return token


async def revoke_personal_access_token(user: User, name: str) -> PersonalAccessToken:
    token = await find_active_token(user, name)
    token.revoked_at = clock.now()
    await token.save(update_fields=["revoked_at"])
    return token


async def rotate_personal_access_token(
    token: PersonalAccessToken, expires_at: date | None, *, prefix: str
) -> CreatedToken:
    """GitLab's rotation: a new secret with the same name and scopes; the old token is
    revoked in the same transaction, so there is never a moment with two or none."""
    check_expiry(expires_at)
    secret = new_secret(prefix)
    async with in_transaction():
        revoked = await PersonalAccessToken.filter(id=token.id, revoked_at=None).update(
            revoked_at=clock.now()
        )
        if not revoked:
            raise NotFound(f"the token {token.name!r} was revoked meanwhile")
        fresh = await PersonalAccessToken.create(
            user_id=token.user_id,  # type: ignore[attr-defined]
            name=token.name,
            token_digest=secret_digest(secret),
            scopes=token.scopes,
            expires_at=expires_at,
        )
    return CreatedToken(secret=secret, personal_access_token=fresh)


async def create_bot_user(username: str, name: str) -> User:
    """The user behind a group access token: no password (nothing verifies against an
    empty hash), never admin, never signing in."""
    return await User.create(
        username=username,
        username_key=username.lower(),
        email=f"{username.lower()}@noreply.dockyard.invalid",
        name=name,
        password_hash="",
        user_type=UserType.GROUP_BOT,
    )


# --- deploy tokens (a group's; the groups domain decides who may manage them) ----------


async def create_deploy_token(
    group_id: int,
    group_path: str,
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
    if await DeployToken.filter(group_id=group_id, name=name, revoked_at=None).exists():
        raise AlreadyExists(f"{group_path} already has an active deploy token named {name!r}")
    secret = new_secret(DEPLOY_TOKEN_PREFIX)
    try:
        token = await DeployToken.create(
            group_id=group_id,
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


def deploy_tokens_query(group_id: int) -> QuerySet[DeployToken]:
    return DeployToken.filter(group_id=group_id)


async def revoke_deploy_token(group_id: int, group_path: str, name: str) -> DeployToken:
    token = await DeployToken.filter(group_id=group_id, name=name, revoked_at=None).first()
    if token is None:
        raise NotFound(f"{group_path} has no active deploy token named {name!r}")
    token.revoked_at = clock.now()
    await token.save(update_fields=["revoked_at"])
    return token
