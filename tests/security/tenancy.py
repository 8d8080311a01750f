"""The tenants the security tests attack: four groups, a user for every role, and
every kind of credential a client may present.

    acme            the top-level group the roles are held in
    acme/platform   its subgroup (a role in acme counts here too)
    beta            an unrelated group of public visibility (which opens nothing)
    zeta            a private group of another owner (zoe)

Each role is one user (its membership is in acme unless the role says otherwise)
holding one credential of every user kind (password and five personal access
tokens); deploy tokens and group access tokens (bot members of their group)
stand on their own. Everything is created through the domain's records or, for
group tokens, its checked services as the operator, with plain database updates
only where time must have passed (an expired token).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import httpx
from starlette.applications import Starlette

from app import clock
from app.accounts import records as accounts
from app.accounts.models import DeployToken, PersonalAccessToken, User, UserState
from app.accounts.principal import Principal
from app.asgi import create_app
from app.config import Settings, load_settings, prepare_data_dir
from app.groups import access_tokens, deploy_tokens
from app.groups import records as groups
from app.groups.models import AccessLevel, Group, Visibility
from tests.support.operator import OPERATOR

TOP, SUB, UNRELATED, FOREIGN = "acme", "acme/platform", "beta", "zeta"
GROUPS = (TOP, SUB, UNRELATED, FOREIGN)
BOTH_REGISTRY_SCOPES = "read_registry,write_registry"
SECRET_KEY = "security-tests-secret-key-" + "s" * 40
BASE_URL = "http://dockyard.test"


@dataclass(frozen=True)
class Role:
    label: str
    username: str
    membership: tuple[str, AccessLevel] | None = None
    admin: bool = False
    blocked: bool = False


ROLES = (
    Role("no role", "nora"),
    Role("Guest", "gus", (TOP, AccessLevel.GUEST)),
    Role("Reporter", "rita", (TOP, AccessLevel.REPORTER)),
    Role("Developer", "dave", (TOP, AccessLevel.DEVELOPER)),
    Role("Maintainer", "mia", (TOP, AccessLevel.MAINTAINER)),
    Role("Owner", "olivia", (TOP, AccessLevel.OWNER)),
    Role("Guest of acme/platform only", "sam", (SUB, AccessLevel.GUEST)),
    Role("instance admin", "ada", admin=True),
    Role("blocked Owner", "bob", (TOP, AccessLevel.OWNER), blocked=True),
)

# A user's credentials: None is the password; otherwise (scopes, state).
USER_CREDENTIALS: dict[str, tuple[str, str] | None] = {
    "password": None,
    "PAT api": ("api", "live"),
    "PAT read_registry+write_registry": (BOTH_REGISTRY_SCOPES, "live"),
    "PAT read_registry": ("read_registry", "live"),
    "PAT read_api": ("read_api", "live"),
    "PAT api, expired": ("api", "expired"),
    "PAT api, revoked": ("api", "revoked"),
}

# Deploy tokens: (group, scopes, state).
DEPLOY_TOKENS: dict[str, tuple[str, str, str]] = {
    "deploy token of acme": (TOP, BOTH_REGISTRY_SCOPES, "live"),
    "deploy token of acme/platform": (SUB, BOTH_REGISTRY_SCOPES, "live"),
    "deploy token of zeta": (FOREIGN, BOTH_REGISTRY_SCOPES, "live"),
    "deploy token of acme, read_registry only": (TOP, "read_registry", "live"),
    "deploy token of acme, expired": (TOP, BOTH_REGISTRY_SCOPES, "expired"),
    "deploy token of acme, revoked": (TOP, BOTH_REGISTRY_SCOPES, "revoked"),
}


# Group access tokens: (group, role of their bot, scopes, state). `docker login`
# takes any username with them, as GitLab does: GROUP_TOKEN_LOGIN is the one sent.
GROUP_ACCESS_TOKENS: dict[str, tuple[str, AccessLevel, str, str]] = {
    "group access token of acme, Guest, registry": (
        TOP,
        AccessLevel.GUEST,
        BOTH_REGISTRY_SCOPES,
        "live",
    ),
    "group access token of acme/platform, Developer, api": (
        SUB,
        AccessLevel.DEVELOPER,
        "api",
        "live",
    ),
    "group access token of zeta, Owner, api": (FOREIGN, AccessLevel.OWNER, "api", "live"),
    "group access token of acme, Reporter, read_api": (
        TOP,
        AccessLevel.REPORTER,
        "read_api",
        "live",
    ),
    "group access token of acme, Owner, api, expired": (TOP, AccessLevel.OWNER, "api", "expired"),
    "group access token of acme, Owner, api, revoked": (TOP, AccessLevel.OWNER, "api", "revoked"),
}
GROUP_TOKEN_LOGIN = "any-username"


def password_of(username: str) -> str:
    return f"{username}-password-1"


@dataclass(frozen=True)
class Credential:
    """One credential as a client presents it, and the principal it stands for."""

    role: str | None  # None for deploy tokens
    kind: str  # a USER_CREDENTIALS or DEPLOY_TOKENS label
    username: str
    secret: str
    principal: Principal

    @property
    def label(self) -> str:
        return label_of(self.role, self.kind)


def credential_labels() -> list[tuple[str | None, str]]:
    """(role, kind) of every credential, in table order (no database needed)."""
    users = [(role.label, kind) for role in ROLES for kind in USER_CREDENTIALS]
    tokens = [*DEPLOY_TOKENS, *GROUP_ACCESS_TOKENS]
    return [*users, *((None, kind) for kind in tokens)]


def label_of(role: str | None, kind: str) -> str:
    return f"{role}: {kind}" if role else kind


@dataclass
class Tenancy:
    groups: dict[str, Group]
    credentials: dict[str, Credential]
    users: dict[str, User]
    # The id of one live `api` personal access token of each person (zoe's included).
    api_token_ids: dict[str, int]

    def credential(self, role: str | None, kind: str) -> Credential:
        return self.credentials[label_of(role, kind)]


async def _expire(token: PersonalAccessToken | DeployToken) -> None:
    # Expiry dates must lie in the future when set: the day passes afterwards.
    yesterday = clock.today() - timedelta(days=1)
    await type(token).filter(id=token.id).update(expires_at=yesterday)


async def _user_credentials(role: Role, user: User) -> list[Credential]:
    password = password_of(user.username)
    made = [Credential(role.label, "password", user.username, password, Principal(user=user))]
    for kind, spec in USER_CREDENTIALS.items():
        if spec is None:
            continue
        scopes, state = spec
        created = await accounts.create_personal_access_token(user, kind, scopes)
        token = created.personal_access_token
        if state == "expired":
            await _expire(token)
        elif state == "revoked":
            await accounts.revoke_personal_access_token(user, kind)
        principal = Principal(user=user, scopes=token.scope_set, personal_access_token=token)
        made.append(Credential(role.label, kind, user.username, created.secret, principal))
    return made


async def _deploy_credentials(by_path: dict[str, Group]) -> list[Credential]:
    made = []
    for kind, (path, scopes, state) in DEPLOY_TOKENS.items():
        created = await deploy_tokens.create_deploy_token(OPERATOR, by_path[path], kind, scopes)
        token = created.deploy_token
        if state == "expired":
            await _expire(token)
        elif state == "revoked":
            await deploy_tokens.revoke_deploy_token(OPERATOR, by_path[path], kind)
        await token.fetch_related("group")
        principal = Principal(scopes=token.scope_set, deploy_token=token)
        made.append(Credential(None, kind, created.username, created.secret, principal))
    return made


async def _group_credentials(by_path: dict[str, Group]) -> list[Credential]:
    made = []
    for kind, (path, level, scopes, state) in GROUP_ACCESS_TOKENS.items():
        group = by_path[path]
        created = await access_tokens.create_group_access_token(
            OPERATOR, group, kind, level, scopes
        )
        token = created.group_access_token.token
        if state == "expired":
            await _expire(token)
        elif state == "revoked":
            await access_tokens.revoke_group_access_token(OPERATOR, group, kind)
        principal = Principal(user=token.user, scopes=token.scope_set, personal_access_token=token)
        made.append(Credential(None, kind, GROUP_TOKEN_LOGIN, created.secret, principal))
    return made


def is_group_access_token(kind: str) -> bool:
    return kind in GROUP_ACCESS_TOKENS


async def build_tenancy() -> Tenancy:
    """Create the groups, users, memberships and credentials (the database must be open)."""
    zoe = await accounts.create_user("zoe", "zoe@example.com", password_of("zoe"))
    by_path = {
        TOP: await groups.create_group(TOP),
        SUB: await groups.create_group(SUB),
        UNRELATED: await groups.create_group(UNRELATED, visibility=Visibility.PUBLIC),
        FOREIGN: await groups.create_group(FOREIGN, owner=zoe),
    }
    credentials: list[Credential] = []
    users = {"zoe": zoe}
    for role in ROLES:
        user = await accounts.create_user(
            role.username,
            f"{role.username}@example.com",
            password_of(role.username),
            is_admin=role.admin,
        )
        users[role.username] = user
        if role.membership is not None:
            path, level = role.membership
            await groups.add_member(by_path[path], user, level)
        credentials += await _user_credentials(role, user)
        if role.blocked:
            await accounts.set_state(user, UserState.BLOCKED)
    credentials += await _deploy_credentials(by_path)
    credentials += await _group_credentials(by_path)
    zoe_token = await accounts.create_personal_access_token(zoe, "zoe's scripts", "api")
    api_token_ids = {"zoe": zoe_token.personal_access_token.id}
    for item in credentials:
        token = item.principal.personal_access_token
        if item.kind == "PAT api" and token is not None:
            api_token_ids[item.username] = token.id
    return Tenancy(by_path, {item.label: item for item in credentials}, users, api_token_ids)


@dataclass
class InProcessDockyard:
    """The whole app in-process (lifespan included) with its own data folder."""

    app: Starlette
    settings: Settings
    http: httpx.AsyncClient


def security_settings(data_dir: Path, template: Path, upstream_url: str) -> Settings:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "dockyard.sqlite3").write_bytes(template.read_bytes())
    settings = load_settings(
        {},
        data_dir=data_dir,
        secret_key=SECRET_KEY,
        external_url=BASE_URL,
        upstream_url=upstream_url,
    )
    return prepare_data_dir(settings)


@asynccontextmanager
async def in_process_dockyard(settings: Settings) -> AsyncIterator[InProcessDockyard]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            yield InProcessDockyard(app=app, settings=settings, http=http)


def with_upstream(settings: Settings, upstream_url: str) -> Settings:
    return replace(settings, upstream_url=upstream_url)
