"""Add an upstream registry to a group's list (Owner), at a position or last.

The group's list becomes its own if it inherited one (`upstream_lists.py`).
Credentials are stored encrypted and never returned; a URL the list already
holds, or a name it already uses, is refused.
"""

from __future__ import annotations

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.accounts.principal import Principal
from app.config import Settings
from app.dependency_proxy import credentials
from app.dependency_proxy.models import Upstream
from app.dependency_proxy.upstream_lists import (
    MAX_UPSTREAMS,
    UpstreamView,
    check_credentials,
    check_name,
    check_validity,
    default_name,
    normalized_url,
    own_rows,
    renumber,
    view_of,
)
from app.errors import AlreadyExists, InvalidInput
from app.groups.models import Group
from app.groups.policy import require_administer


async def add_upstream(
    principal: Principal,
    group: Group,
    settings: Settings,
    *,
    url: str,
    name: str | None = None,
    username: str | None = None,
    password: str | None = None,
    position: int | None = None,
    cache_validity_hours: int | None = None,
) -> UpstreamView:
    """Add the upstream (the operator at the command line may too)."""
    await require_administer(principal, group, "change its upstream registries")
    base = normalized_url(url)
    name = check_name(name if name is not None else default_name(base))
    check_credentials(username, password)
    check_validity(cache_validity_hours)
    try:
        return await _insert(
            group, settings, base, name, username, password, position, cache_validity_hours
        )
    except IntegrityError:
        # Another change of the same list won the race (the unique name caught it).
        raise AlreadyExists(
            f"the upstream list of {group.full_path} changed meanwhile: try again"
        ) from None


async def _insert(
    group: Group,
    settings: Settings,
    base: str | None,
    name: str,
    username: str | None,
    password: str | None,
    position: int | None,
    cache_validity_hours: int | None,
) -> UpstreamView:
    async with in_transaction():
        rows = await own_rows(group)
        if len(rows) >= MAX_UPSTREAMS:
            raise InvalidInput(f"a group has at most {MAX_UPSTREAMS} upstreams")
        if any(row.name == name for row in rows):
            raise AlreadyExists(f"the group already has an upstream named {name!r}")
        if any(_same_registry(row.url, base, settings) for row in rows):
            raise AlreadyExists(f"the group already has an upstream for {base}")
        if position is not None and not 1 <= position <= len(rows) + 1:
            raise InvalidInput(f"position must be between 1 and {len(rows) + 1}")
        index = (position or len(rows) + 1) - 1
        row = Upstream(
            group_id=group.id,
            position=index + 1,
            name=name,
            url=base,
            cache_validity_hours=cache_validity_hours,
        )
        if username is not None and password is not None:
            row.identity_encrypted = credentials.encrypt(settings.secret_key, username.strip())
            row.secret_encrypted = credentials.encrypt(settings.secret_key, password)
        await row.save()
        rows.insert(index, row)
        await renumber(rows)
    return view_of(row, index + 1, settings)


def _same_registry(existing: str | None, new: str | None, settings: Settings) -> bool:
    """Whether two entries name one registry (None: the instance's Docker Hub URL)."""
    instance = settings.upstream_url.rstrip("/")
    return (existing or instance) == (new or instance)
