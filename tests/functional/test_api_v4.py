"""GitLab's REST purge: DELETE /api/v4/groups/:id/dependency_proxy/cache."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.accounts import records as accounts
from app.dependency_proxy.models import Blob, CacheStatus
from app.groups import records as groups
from app.groups.models import AccessLevel, Group
from tests.support.cache_rows import add_blob, add_manifest


@pytest.fixture
async def setup(client: httpx.AsyncClient) -> AsyncIterator[dict[str, str | Group]]:
    acme = await groups.create_group("acme")
    platform = await groups.create_group("acme/platform")
    olga = await accounts.create_user("olga", "olga@example.com", "olga-password")
    gina = await accounts.create_user("gina", "gina@example.com", "gina-password")
    await groups.add_member(acme, olga, AccessLevel.OWNER)
    await groups.add_member(acme, gina, AccessLevel.GUEST)
    await add_manifest(platform, "alpine", "latest")
    await add_blob(platform, "layer")

    async def token(user: object, scopes: str) -> str:
        return (await accounts.create_personal_access_token(user, scopes, scopes)).secret  # type: ignore[arg-type]

    yield {
        "platform": platform,
        "owner": await token(olga, "api"),
        "owner_read_api": await token(olga, "read_api"),
        "guest": await token(gina, "api"),
    }


async def active_blobs() -> int:
    return await Blob.filter(status=CacheStatus.DEFAULT).count()


async def test_owner_purges_by_url_encoded_path(client: httpx.AsyncClient, setup: dict) -> None:
    response = await client.delete(
        "/api/v4/groups/acme%2Fplatform/dependency_proxy/cache",
        headers={"PRIVATE-TOKEN": setup["owner"]},
    )
    assert response.status_code == 202 and response.content == b""
    assert await active_blobs() == 0


async def test_owner_purges_by_id_with_bearer(client: httpx.AsyncClient, setup: dict) -> None:
    response = await client.delete(
        f"/api/v4/groups/{setup['platform'].id}/dependency_proxy/cache",
        headers={"Authorization": f"Bearer {setup['owner']}"},
    )
    assert response.status_code == 202
    assert await active_blobs() == 0


async def test_no_token_is_401(client: httpx.AsyncClient, setup: dict) -> None:
    response = await client.delete("/api/v4/groups/acme%2Fplatform/dependency_proxy/cache")
    assert response.status_code == 401
    assert await active_blobs() == 1


@pytest.mark.parametrize("who", ["guest", "owner_read_api"])
async def test_not_allowed_looks_like_missing(
    client: httpx.AsyncClient, setup: dict, who: str
) -> None:
    for ident in ("acme%2Fplatform", "no-such-group", "999999"):
        response = await client.delete(
            f"/api/v4/groups/{ident}/dependency_proxy/cache", headers={"PRIVATE-TOKEN": setup[who]}
        )
        assert response.status_code == 404
        assert response.json() == {"message": "404 Group Not Found"}
    assert await active_blobs() == 1
