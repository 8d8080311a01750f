"""Mutations and their permission boundaries."""

from __future__ import annotations

import pytest

from app.dependency_proxy import credentials
from app.dependency_proxy.models import Blob, CacheStatus, Manifest, Upstream
from app.gql.permissions import RESOURCE_NOT_AVAILABLE
from tests.conftest import TEST_SECRET
from tests.functional.graphql.conftest import World, operation
from tests.support.cache_rows import add_blob, add_manifest

CLEAR = operation("clearDependencyProxyCache")
SETTINGS = operation("updateDependencyProxySettings")
TTL = operation("updateDependencyProxyImageTtlGroupPolicy")


def denied(body: dict) -> bool:
    return [error["message"] for error in body.get("errors", [])] == [RESOURCE_NOT_AVAILABLE]


async def test_owner_clears_the_cache_guest_cannot(world: World) -> None:
    await add_manifest(world.acme, "alpine", "latest")
    await add_blob(world.acme, "layer")
    body = await world.gql(CLEAR, {"groupPath": "acme"}, as_user="guest")
    assert denied(body) and body["data"]["clearDependencyProxyCache"] is None
    assert await Blob.filter(status=CacheStatus.DEFAULT).count() == 1

    payload = (await world.data(CLEAR, {"groupPath": "acme"}, as_user="owner"))[
        "clearDependencyProxyCache"
    ]
    assert payload == {
        "clientMutationId": None,
        "errors": [],
        "manifestsMarked": 1,
        "blobsMarked": 1,
    }
    assert await Manifest.filter(status=CacheStatus.PENDING_DESTRUCTION).count() == 1
    again = await world.data(CLEAR, {"groupPath": "acme"}, as_user="owner")
    assert again["clearDependencyProxyCache"]["blobsMarked"] == 0  # idempotent


async def test_read_api_token_cannot_mutate(world: World) -> None:
    await add_blob(world.acme, "layer")
    body = await world.gql(CLEAR, {"groupPath": "acme"}, as_user="owner_read_api")
    assert denied(body)
    assert await Blob.filter(status=CacheStatus.DEFAULT).count() == 1
    # ...but it may read.
    data = await world.data('{ group(fullPath: "acme") { id } }', as_user="owner_read_api")
    assert data["group"] is not None


async def test_anonymous_cannot_mutate(world: World) -> None:
    assert denied(await world.gql(CLEAR, {"groupPath": "acme"}))


async def test_settings_credentials_together_and_secret_never_readable(world: World) -> None:
    variables = {"input": {"groupPath": "acme", "identity": "hubuser", "clientMutationId": "c1"}}
    payload = (await world.data(SETTINGS, variables, as_user="owner"))[
        "updateDependencyProxySettings"
    ]
    assert payload["errors"] == ["identity and secret must be given together"]
    assert payload["clientMutationId"] == "c1" and payload["dependencyProxySetting"] is None

    variables["input"].update(secret="hub-secret", enabled=False, revalidationInterval=60)
    body = await world.gql(SETTINGS, variables, as_user="owner")
    assert "hub-secret" not in str(body)
    setting = body["data"]["updateDependencyProxySettings"]["dependencyProxySetting"]
    assert setting == {
        "enabled": False,
        "identity": "hubuser",
        "revalidationInterval": 60,
        "sizeLimitBytes": None,
    }
    row = await Upstream.get(group_id=world.acme.id, url=None)
    assert credentials.decrypt(TEST_SECRET, row.secret_encrypted or "") == "hub-secret"
    assert denied(await world.gql(SETTINGS, variables, as_user="guest"))


async def test_ttl_policy_validation_is_a_payload_error(world: World) -> None:
    variables = {"input": {"groupPath": "acme", "ttl": 0}}
    payload = (await world.data(TTL, variables, as_user="owner"))[
        "updateDependencyProxyImageTtlGroupPolicy"
    ]
    assert payload["errors"] and payload["dependencyProxyImageTtlPolicy"] is None
    variables = {"input": {"groupPath": "acme", "ttl": 14, "enabled": True}}
    policy = (await world.data(TTL, variables, as_user="owner"))[
        "updateDependencyProxyImageTtlGroupPolicy"
    ]["dependencyProxyImageTtlPolicy"]
    assert policy["ttl"] == 14 and policy["enabled"] and policy["createdAt"].endswith("Z")
    assert denied(await world.gql(TTL, variables, as_user="guest"))


async def test_group_creation_and_membership(world: World) -> None:
    created = (await world.data(operation("groupCreate"), {"path": "acme/ci"}, as_user="owner"))[
        "groupCreate"
    ]
    assert created["errors"] == [] and created["group"]["fullPath"] == "Acme/ci"
    taken = await world.data(operation("groupCreate"), {"path": "acme/ci"}, as_user="owner")
    assert taken["groupCreate"]["errors"] and taken["groupCreate"]["group"] is None
    # A Guest of the parent may not create subgroups.
    assert denied(await world.gql(operation("groupCreate"), {"path": "acme/x"}, as_user="guest"))

    add = {"groupPath": "acme/ci", "username": "sam", "accessLevel": "DEVELOPER"}
    member = (await world.data(operation("groupMemberAdd"), add, as_user="owner"))["groupMemberAdd"]
    assert member["groupMember"] == {
        "user": {"username": "sam"},
        "accessLevel": {"integerValue": 30, "stringValue": "DEVELOPER"},
    }
    update = {**add, "accessLevel": "MAINTAINER"}
    updated = (await world.data(operation("groupMemberUpdate"), update, as_user="owner"))[
        "groupMemberUpdate"
    ]
    assert updated["groupMember"]["accessLevel"]["stringValue"] == "MAINTAINER"
    members = await world.data(
        operation("getGroupMembers"), {"fullPath": "acme/ci"}, as_user="stranger"
    )
    names = {node["user"]["username"]: node for node in members["group"]["groupMembers"]["nodes"]}
    assert names["olga"]["inherited"] and not names["sam"]["inherited"]

    remove = {"groupPath": "acme/ci", "username": "sam"}
    assert denied(await world.gql(operation("groupMemberRemove"), remove, as_user="stranger"))
    removed = await world.data(operation("groupMemberRemove"), remove, as_user="owner")
    assert removed["groupMemberRemove"]["errors"] == []
    unknown = {"groupPath": "acme", "username": "nobody", "accessLevel": "GUEST"}
    payload = await world.data(operation("groupMemberAdd"), unknown, as_user="owner")
    assert payload["groupMemberAdd"]["errors"] == ["user 'nobody' not found"]


@pytest.mark.parametrize("as_user", ["stranger", None])
async def test_strangers_cannot_manage_members(world: World, as_user: str | None) -> None:
    add = {"groupPath": "acme", "username": "sam", "accessLevel": "OWNER"}
    assert denied(await world.gql(operation("groupMemberAdd"), add, as_user=as_user))
