"""currentUser, token scopes and their refusals, group access tokens and rotation,
through the real app and GitLab's names."""

from __future__ import annotations

import pytest

from app.dependency_proxy import credentials
from app.dependency_proxy.models import Blob, CacheStatus, Upstream
from app.gql.permissions import RESOURCE_NOT_AVAILABLE
from tests.conftest import TEST_SECRET
from tests.functional.graphql.conftest import World, operation
from tests.support.cache_rows import add_blob

CLEAR = operation("clearDependencyProxyCache")
SETTINGS = operation("updateDependencyProxySettings")
TTL = operation("updateDependencyProxyImageTtlGroupPolicy")
CREATE_GROUP_TOKEN = operation("groupAccessTokenCreate")


async def test_current_user_is_gitlab_s_current_user_type(world: World) -> None:
    data = await world.data(operation("getCurrentUser"), as_user="owner")
    user = data["currentUser"]
    assert user["__typename"] == "CurrentUser"
    assert (user["username"], user["state"], user["bot"]) == ("olga", "active", False)
    names = {node["name"] for node in user["personalAccessTokens"]["nodes"]}
    assert {"olga-api", "olga-read_api", "olga-read_registry"} <= names
    assert (await world.data("{ currentUser { id } }"))["currentUser"] is None


async def test_a_mutation_by_get_is_a_json_graphql_error(world: World) -> None:
    answer = await world.client.get(
        "/api/graphql",
        params={
            "query": 'mutation { clearDependencyProxyCache(input: {groupPath: "acme"}) { errors } }'
        },
        headers={"Authorization": f"Bearer {world.tokens['owner']}"},
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/json")
    [error] = answer.json()["errors"]
    assert "mutations are not allowed in GET requests" in error["message"]
    assert "POST" in error["message"]


async def test_a_read_api_token_is_told_its_scope_is_why_a_mutation_is_refused(
    world: World,
) -> None:
    await add_blob(world.acme, "layer")
    body = await world.gql(CLEAR, {"groupPath": "acme"}, as_user="owner_read_api")
    [error] = body["errors"]
    assert error["message"] == RESOURCE_NOT_AVAILABLE  # GitLab's words, for scripts
    assert error["extensions"]["code"] == "INSUFFICIENT_SCOPE"
    assert "read_api" in error["extensions"]["reason"] and "api" in error["extensions"]["reason"]
    assert await Blob.filter(status=CacheStatus.DEFAULT).count() == 1
    # A Guest with `api` is refused for their role: no scope reason, nothing revealed.
    [guest_error] = (await world.gql(CLEAR, {"groupPath": "acme"}, as_user="guest"))["errors"]
    assert guest_error["message"] == RESOURCE_NOT_AVAILABLE and "extensions" not in guest_error


async def test_an_owner_s_group_token_works_for_graphql_and_rest_in_its_group_only(
    world: World,
) -> None:
    await add_blob(world.acme, "layer")
    variables = {
        "input": {"groupPath": "acme", "name": "ops", "accessLevel": "OWNER", "scopes": ["api"]}
    }
    payload = (await world.data(CREATE_GROUP_TOKEN, variables, as_user="owner"))[
        "groupAccessTokenCreate"
    ]
    secret = payload["token"]
    assert secret.startswith("dygat-") and payload["groupAccessToken"]["user"]["bot"]
    world.tokens["ops"] = secret
    mine = await world.data('{ group(fullPath: "acme") { id } }', as_user="ops")
    assert mine["group"] is not None
    other = await world.data('{ group(fullPath: "other") { id } }', as_user="ops")
    assert other["group"] is None
    purge = await world.client.delete(
        "/api/v4/groups/other/dependency_proxy/cache", headers={"PRIVATE-TOKEN": secret}
    )
    assert purge.status_code == 404
    purge = await world.client.delete(
        "/api/v4/groups/acme/dependency_proxy/cache", headers={"PRIVATE-TOKEN": secret}
    )
    assert purge.status_code == 202
    assert await Blob.filter(status=CacheStatus.DEFAULT).count() == 0
    # Listed with its role; revoked, it is dead at once.
    listed = await world.data(
        operation("getGroupAccessTokens"), {"fullPath": "acme", "first": 5}, as_user="owner"
    )
    [node] = listed["group"]["accessTokens"]["nodes"]
    assert (node["name"], node["accessLevel"]["stringValue"], node["active"]) == (
        "ops",
        "OWNER",
        True,
    )
    assert node["lastUsedAt"] is not None
    revoke = operation("groupAccessTokenRevoke")
    await world.data(revoke, {"groupPath": "acme", "name": "ops"}, as_user="owner")
    answer = await world.client.post(
        "/api/graphql",
        json={"query": "{ currentUser { id } }"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert answer.status_code == 401


@pytest.mark.parametrize("who", ["guest", "stranger"])
async def test_only_owners_see_or_make_group_tokens(world: World, who: str) -> None:
    listed = await world.data(operation("getGroupAccessTokens"), {"fullPath": "acme"}, as_user=who)
    assert listed["group"] is None or listed["group"]["accessTokens"] is None
    variables = {
        "input": {"groupPath": "acme", "name": "x", "accessLevel": "GUEST", "scopes": ["api"]}
    }
    body = await world.gql(CREATE_GROUP_TOKEN, variables, as_user=who)
    assert body["data"]["groupAccessTokenCreate"] is None
    assert body["errors"][0]["message"] == RESOURCE_NOT_AVAILABLE


async def test_rotation_by_graphql_kills_the_old_secret(world: World) -> None:
    mine = await world.data(operation("getCurrentUser"), as_user="owner")
    [read_api] = [
        node
        for node in mine["currentUser"]["personalAccessTokens"]["nodes"]
        if node["name"] == "olga-read_api"
    ]
    rotated = (
        await world.data(
            operation("personalAccessTokenRotate"), {"id": read_api["id"]}, as_user="owner"
        )
    )["personalAccessTokenRotate"]
    assert rotated["errors"] == [] and rotated["token"].startswith("dypat-")
    assert rotated["personalAccessToken"]["scopes"] == ["read_api"]
    old = await world.client.post(
        "/api/graphql",
        json={"query": "{ currentUser { id } }"},
        headers={"Authorization": f"Bearer {world.tokens['owner_read_api']}"},
    )
    assert old.status_code == 401
    world.tokens["rotated"] = rotated["token"]
    assert (await world.data("{ currentUser { username } }", as_user="rotated"))["currentUser"]
    # Someone else's token id is not there for a stranger.
    body = await world.gql(
        operation("personalAccessTokenRotate"), {"id": read_api["id"]}, as_user="stranger"
    )
    assert body["errors"][0]["message"] == RESOURCE_NOT_AVAILABLE


async def test_identity_or_secret_alone_when_the_other_is_stored(world: World) -> None:
    async def update(**changes: object) -> dict:
        variables = {"input": {"groupPath": "acme", **changes}}
        return (await world.data(SETTINGS, variables, as_user="owner"))[
            "updateDependencyProxySettings"
        ]

    assert (await update(identity="hubuser", secret="first-secret"))["errors"] == []
    renamed = await update(identity="hubuser2")
    assert renamed["errors"] == [] and renamed["dependencyProxySetting"]["identity"] == "hubuser2"
    assert (await update(secret="second-secret"))["errors"] == []
    # Kept on the group's Docker Hub upstream (its own list's entry following the instance URL).
    row = await Upstream.get(group_id=world.acme.id, url__isnull=True)
    assert credentials.decrypt(TEST_SECRET, row.identity_encrypted or "") == "hubuser2"
    assert credentials.decrypt(TEST_SECRET, row.secret_encrypted or "") == "second-secret"
    # One of the two blank while the other stays is refused; both blank clears both.
    assert (await update(identity=""))["errors"] == ["identity and secret must be given together"]
    cleared = await update(identity="", secret="")
    assert cleared["errors"] == [] and cleared["dependencyProxySetting"]["identity"] is None
    row = await Upstream.get(group_id=world.acme.id, url__isnull=True)
    assert row.identity_encrypted is None and row.secret_encrypted is None


@pytest.mark.parametrize(
    ("ttl", "accepted"), [(1, True), (36500, True), (2**31 - 1, True), (0, False), (-3, False)]
)
async def test_ttl_accepts_what_gitlab_accepts(world: World, ttl: int, accepted: bool) -> None:
    variables = {"input": {"groupPath": "acme", "ttl": ttl, "enabled": True}}
    payload = (await world.data(TTL, variables, as_user="owner"))[
        "updateDependencyProxyImageTtlGroupPolicy"
    ]
    if accepted:
        assert payload["errors"] == [] and payload["dependencyProxyImageTtlPolicy"]["ttl"] == ttl
    else:
        assert payload["errors"] == ["ttl must be greater than 0"]


async def test_group_members_are_paged_and_searchable(world: World) -> None:
    query = """query ($after: String) { group(fullPath: "acme") {
      groupMembers(first: 1, after: $after) { nodes { user { username } }
        pageInfo { hasNextPage endCursor } } } }"""
    first = (await world.data(query, as_user="guest"))["group"]["groupMembers"]
    assert len(first["nodes"]) == 1 and first["pageInfo"]["hasNextPage"]
    second = (await world.data(query, {"after": first["pageInfo"]["endCursor"]}, as_user="guest"))[
        "group"
    ]["groupMembers"]
    names = {first["nodes"][0]["user"]["username"], second["nodes"][0]["user"]["username"]}
    assert names == {"olga", "gina"}
    search = (
        '{ group(fullPath: "acme") { groupMembers(search: "gin") '
        "{ nodes { user { username } } } } }"
    )
    found = await world.data(search, as_user="guest")
    assert [n["user"]["username"] for n in found["group"]["groupMembers"]["nodes"]] == ["gina"]
