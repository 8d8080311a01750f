"""Registry-mirror mode (DOCKYARD_MIRROR_GROUP): plain Docker Hub paths are answered from
the mirror group's cache, with the same authentication; without the setting they
stay unknown. Against a fake upstream standing in for Docker Hub."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest

from app.accounts import records as accounts
from app.asgi import create_app
from app.config import Settings
from app.dependency_proxy.models import Manifest
from app.groups import records as groups
from app.groups.models import AccessLevel
from tests.functional.registry.test_registry_surface import basic
from tests.support.fake_upstream import FakeUpstream


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        upstream.add_image("library/alpine", "3.19", [b"alpine layer"])
        upstream.add_image("bitnami/redis", "7", [b"redis layer"])
        yield upstream


@pytest.fixture
def settings(settings: Settings, hub: FakeUpstream) -> Settings:
    return dataclasses.replace(settings, upstream_url=hub.url, mirror_group="mirror")


@pytest.fixture
async def secrets(client: httpx.AsyncClient) -> dict[str, str]:
    """alice may pull from `mirror`; mallory is in no group."""
    mirror = await groups.create_group("mirror")
    alice = await accounts.create_user("alice", "alice@example.com", "alice-password")
    await groups.add_member(mirror, alice, AccessLevel.GUEST)
    mallory = await accounts.create_user("mallory", "mallory@example.com", "mallory-password")
    return {
        "alice": (await accounts.create_personal_access_token(alice, "t", "api")).secret,
        "mallory": (await accounts.create_personal_access_token(mallory, "t", "api")).secret,
    }


async def token(client: httpx.AsyncClient, user: str, secret: str, scope: str) -> dict[str, object]:
    answer = await client.get(
        "/jwt/auth",
        params={"service": "dependency_proxy", "scope": scope},
        headers=basic(user, secret),
    )
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def test_plain_docker_hub_paths_are_served_from_the_mirror_group(
    client: httpx.AsyncClient, secrets: dict[str, str], hub: FakeUpstream
) -> None:
    unauthenticated = await client.get("/v2/library/alpine/manifests/3.19")
    assert unauthenticated.status_code == 401
    assert 'scope="repository:library/alpine:pull"' in unauthenticated.headers["WWW-Authenticate"]

    issued = await token(client, "alice", secrets["alice"], "repository:library/alpine:pull")
    headers = {"Authorization": f"Bearer {issued['token']}"}
    answer = await client.get("/v2/library/alpine/manifests/3.19", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.content == hub.manifests["library/alpine", "3.19"][0]
    # `library/alpine` is the mirror group's `alpine`: one cache for both ways in.
    mirror = await groups.get_group("mirror")
    assert await Manifest.filter(group_id=mirror.id, image_name="alpine").count() == 1

    # The token names one repository: another one needs its own.
    other = await client.get("/v2/bitnami/redis/manifests/7", headers=headers)
    assert other.status_code == 401 and "insufficient_scope" in other.headers["WWW-Authenticate"]
    issued = await token(client, "alice", secrets["alice"], "repository:bitnami/redis:pull")
    redis = await client.get(
        "/v2/bitnami/redis/manifests/7", headers={"Authorization": f"Bearer {issued['token']}"}
    )
    assert redis.status_code == 200
    assert await Manifest.filter(group_id=mirror.id, image_name="bitnami/redis").count() == 1


async def test_someone_who_may_not_pull_from_the_mirror_group_gets_nothing(
    client: httpx.AsyncClient, secrets: dict[str, str]
) -> None:
    issued = await token(client, "mallory", secrets["mallory"], "repository:library/alpine:pull")
    assert issued["token"]  # a token, but without the repository (Docker's token spec)
    answer = await client.get(
        "/v2/library/alpine/manifests/3.19", headers={"Authorization": f"Bearer {issued['token']}"}
    )
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "NAME_UNKNOWN"


async def test_without_mirror_mode_plain_paths_stay_unknown(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    plain = create_app(dataclasses.replace(settings, mirror_group=""))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=plain), base_url="http://dockyard.test"
    ) as other:
        answer = await other.get("/v2/library/alpine/manifests/3.19")
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "NAME_UNKNOWN"
