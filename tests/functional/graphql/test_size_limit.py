"""updateDependencyProxySettings(sizeLimitBytes) and dependencyProxySetting.sizeLimitBytes:
an Owner sets, keeps or removes the group's limit; nobody else can (issue 13 point 3)."""

from __future__ import annotations

from app.dependency_proxy.models import GroupSetting
from app.gql.permissions import RESOURCE_NOT_AVAILABLE
from tests.functional.graphql.conftest import World, operation

SETTINGS = operation("updateDependencyProxySettings")
READ = operation("getDependencyProxySettings")
GIB = 1024**3


def update(**fields: object) -> dict[str, object]:
    return {"input": {"groupPath": "acme", **fields}}


async def stored_limit(world: World) -> int | None:
    row = await GroupSetting.get_or_none(group_id=world.acme.id)
    return None if row is None else row.size_limit_bytes


async def test_owner_sets_keeps_and_removes_the_size_limit(world: World) -> None:
    payload = (await world.data(SETTINGS, update(sizeLimitBytes=str(10 * GIB)), as_user="owner"))[
        "updateDependencyProxySettings"
    ]
    assert payload["errors"] == []
    assert payload["dependencyProxySetting"]["sizeLimitBytes"] == str(10 * GIB)
    assert await stored_limit(world) == 10 * GIB

    # Leaving the field out changes nothing; the setting reads it back.
    await world.data(SETTINGS, update(revalidationInterval=30), as_user="owner")
    read = await world.data(READ, {"fullPath": "acme"}, as_user="owner")
    assert read["group"]["dependencyProxySetting"]["sizeLimitBytes"] == str(10 * GIB)

    await world.data(SETTINGS, update(sizeLimitBytes=None), as_user="owner")
    assert await stored_limit(world) is None


async def test_a_too_small_limit_is_a_payload_error(world: World) -> None:
    payload = (await world.data(SETTINGS, update(sizeLimitBytes="1000"), as_user="owner"))[
        "updateDependencyProxySettings"
    ]
    assert payload["errors"] == ["the size limit must be at least 1 MiB (or no limit)"]
    assert await stored_limit(world) is None


async def test_only_an_owner_of_the_group_sets_it(world: World) -> None:
    for who in ("guest", "stranger", "owner_read_api"):
        body = await world.gql(SETTINGS, update(sizeLimitBytes=str(GIB)), as_user=who)
        messages = [error["message"] for error in body.get("errors", [])]
        payload = (body.get("data") or {}).get("updateDependencyProxySettings")
        refused = messages == [RESOURCE_NOT_AVAILABLE] or bool(payload and payload["errors"])
        assert refused, (who, body)
    assert await stored_limit(world) is None
