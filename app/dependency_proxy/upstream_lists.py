"""A group's own upstream list as its Owners change it: rules, views, and the rows.

A group that inherits its list (or has the default) gets its own the first
time it changes it: a copy of the list it inherited, the credentials
included (the group already pulled with them; they stay encrypted and are
never shown), from then on independent of its ancestors. Removing the last
entry of an own list makes the group inherit again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
from tortoise.transactions import in_transaction

from app.config import Settings
from app.dependency_proxy import credentials
from app.dependency_proxy.models import Upstream
from app.dependency_proxy.upstreams import (
    DOCKER_HUB_NAME,
    DOCKER_HUB_URL,
    effective_rows,
    is_docker_hub_url,
)
from app.errors import InvalidInput
from app.groups.models import Group

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")
MAX_UPSTREAMS = 20
CREDENTIAL_MAX_LENGTH = 255
#: A year: GitLab's virtual registries cap cache validity the same order of magnitude.
CACHE_VALIDITY_MAX_HOURS = 24 * 365


@dataclass(frozen=True)
class UpstreamView:
    """One upstream as pages, GraphQL and the CLI show it: never the secret."""

    name: str
    url: str
    position: int  # 1-based
    docker_hub: bool
    #: The row follows the instance's DOCKYARD_UPSTREAM_URL (the default Docker Hub entry).
    follows_instance_url: bool
    username: str | None
    has_credentials: bool
    cache_validity_hours: int | None


@dataclass(frozen=True)
class UpstreamListing:
    group_path: str
    #: The ancestor whose list applies, None when the group has its own (or the default).
    inherited_from: str | None
    #: True when neither the group nor an ancestor set a list: Docker Hub only.
    is_default: bool
    upstreams: tuple[UpstreamView, ...]


def view_of(row: Upstream | None, position: int, settings: Settings) -> UpstreamView:
    url = (row.url if row is not None else None) or settings.upstream_url.rstrip("/")
    identity = None
    if row is not None and row.identity_encrypted:
        identity = credentials.decrypt(settings.secret_key, row.identity_encrypted)
    return UpstreamView(
        name=row.name if row is not None else DOCKER_HUB_NAME,
        url=url,
        position=position,
        docker_hub=row is None or row.url is None or is_docker_hub_url(url),
        follows_instance_url=row is None or row.url is None,
        username=identity,
        has_credentials=row is not None and bool(row.secret_encrypted),
        cache_validity_hours=row.cache_validity_hours if row is not None else None,
    )


async def listing_of(group: Group, settings: Settings) -> UpstreamListing:
    owner, rows = await effective_rows(group)
    if not rows:
        views: tuple[UpstreamView, ...] = (view_of(None, 1, settings),)
    else:
        views = tuple(view_of(row, index, settings) for index, row in enumerate(rows, 1))
    return UpstreamListing(
        group_path=group.full_path,
        inherited_from=owner.full_path if owner is not None and owner.id != group.id else None,
        is_default=not rows,
        upstreams=views,
    )


def normalized_url(url: str) -> str | None:
    """The registry's base URL (`https://host[:port]`); None for Docker Hub by any name."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError):
        raise InvalidInput(f"{url!r} is not a URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidInput(f"{url!r}: an upstream URL is http(s)://host[:port]")
    if parsed.userinfo or parsed.query or parsed.fragment or parsed.path.strip("/"):
        raise InvalidInput(
            f"{url!r}: give the registry's base URL only (no path, query or credentials)"
        )
    base = f"{parsed.scheme}://{parsed.netloc.decode('ascii').lower()}"
    return DOCKER_HUB_URL if is_docker_hub_url(base) else base


def default_name(url: str | None) -> str:
    if url is None or is_docker_hub_url(url):
        return DOCKER_HUB_NAME
    netloc = httpx.URL(url).netloc.decode("ascii").lower()
    return re.sub(r"[^a-z0-9._-]", "-", netloc).strip("-.")[:64] or "upstream"


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidInput(
            f"upstream name {name!r}: lower-case letters, digits, '.', '_' and '-', "
            "at most 64 characters"
        )
    return name


def check_credentials(username: str | None, password: str | None) -> None:
    if (username is None) != (password is None) or (username is not None and not username.strip()):
        raise InvalidInput("give a username and a password together, or neither")
    if username and password and max(len(username), len(password)) > CREDENTIAL_MAX_LENGTH:
        raise InvalidInput(
            f"username and password must be at most {CREDENTIAL_MAX_LENGTH} characters"
        )


def check_validity(hours: int | None) -> None:
    if hours is not None and not 0 <= hours <= CACHE_VALIDITY_MAX_HOURS:
        raise InvalidInput(f"cache validity must be between 0 and {CACHE_VALIDITY_MAX_HOURS} hours")


async def own_rows(group: Group) -> list[Upstream]:
    """The group's own list, made from the inherited (or default) one if it has none.
    Run inside a transaction."""
    owner, rows = await effective_rows(group)
    if owner is not None and owner.id == group.id:
        return rows
    if not rows:
        return [
            await Upstream.create(group_id=group.id, position=1, name=DOCKER_HUB_NAME, url=None)
        ]
    return [
        await Upstream.create(
            group_id=group.id,
            position=index,
            name=row.name,
            url=row.url,
            identity_encrypted=row.identity_encrypted,
            secret_encrypted=row.secret_encrypted,
            cache_validity_hours=row.cache_validity_hours,
        )
        for index, row in enumerate(rows, 1)
    ]


async def renumber(rows: list[Upstream]) -> None:
    for index, row in enumerate(rows, 1):
        if row.position != index:
            row.position = index
            await row.save(update_fields=["position", "updated_at"])


async def set_docker_hub_credentials(
    group: Group, settings: Settings, identity: str | None, secret: str | None
) -> None:
    """GitLab's group Docker Hub credentials (`updateDependencyProxySettings`): kept on
    the group's first Docker Hub upstream. None leaves that one as stored (GitLab lets
    either change alone); `clear_docker_hub_credentials` removes both."""
    async with in_transaction():
        rows = await own_rows(group)
        hub = next((row for row in rows if row.url is None or is_docker_hub_url(row.url)), None)
        if hub is None:
            hub = await Upstream.create(
                group_id=group.id, position=len(rows) + 1, name=_free_name(rows), url=None
            )
        changed = ["updated_at"]
        if identity is not None:
            hub.identity_encrypted = credentials.encrypt(settings.secret_key, identity)
            changed.append("identity_encrypted")
        if secret is not None:
            hub.secret_encrypted = credentials.encrypt(settings.secret_key, secret)
            changed.append("secret_encrypted")
        await hub.save(update_fields=changed)


async def clear_docker_hub_credentials(group: Group) -> None:
    """Remove the credentials of the group's own Docker Hub upstream (if it has one)."""
    owner, _ = await effective_rows(group)
    if owner is None or owner.id != group.id:
        return  # nothing of its own to clear
    async with in_transaction():
        for hub in await own_rows(group):
            if hub.url is None or is_docker_hub_url(hub.url):
                hub.identity_encrypted = None  # type: ignore[assignment]
                hub.secret_encrypted = None  # type: ignore[assignment]
                await hub.save(
                    update_fields=["identity_encrypted", "secret_encrypted", "updated_at"]
                )
                return


async def docker_hub_identity(group: Group, settings: Settings) -> tuple[str | None, bool]:
    """(identity, whether a secret is set) of the group's own Docker Hub upstream."""
    owner, rows = await effective_rows(group)
    if owner is None or owner.id != group.id:
        return None, False
    for row in rows:
        if row.url is None or is_docker_hub_url(row.url):
            identity = (
                credentials.decrypt(settings.secret_key, row.identity_encrypted)
                if row.identity_encrypted
                else None
            )
            return identity, bool(row.secret_encrypted)
    return None, False


def _free_name(rows: list[Upstream]) -> str:
    taken = {row.name for row in rows}
    name, suffix = DOCKER_HUB_NAME, 2
    while name in taken:
        name, suffix = f"{DOCKER_HUB_NAME}-{suffix}", suffix + 1
    return name


async def groups_relying_on_defaults() -> list[str]:
    """Full paths of the groups whose pulls use the instance's default Docker Hub
    credentials: their list (own, inherited or the default) has a Docker Hub entry
    without credentials of its own. Two queries, whatever the number of groups."""
    groups = await Group.all().order_by("full_path_key").values("id", "full_path", "full_path_key")
    rows = await Upstream.all().values("group_id", "url", "secret_encrypted")
    lists: dict[int, list[dict[str, object]]] = {}
    for row in rows:
        lists.setdefault(int(row["group_id"]), []).append(row)
    id_of_key = {str(group["full_path_key"]): int(group["id"]) for group in groups}
    relying = []
    for group in groups:
        parts = str(group["full_path_key"]).split("/")
        keys = ["/".join(parts[:depth]) for depth in range(len(parts), 0, -1)]  # nearest first
        own = next((lists[id_of_key[key]] for key in keys if id_of_key.get(key) in lists), None)
        if own is None or any(
            (row["url"] is None or is_docker_hub_url(str(row["url"])))
            and not row["secret_encrypted"]
            for row in own
        ):
            relying.append(str(group["full_path"]))
    return relying
