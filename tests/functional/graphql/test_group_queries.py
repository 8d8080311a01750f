"""group(fullPath:) and its Dependency Proxy fields, through the real app."""

from __future__ import annotations

from app.dependency_proxy.models import GroupCacheStatistic, ImageTtlGroupPolicy
from app.gql.permissions import RESOURCE_NOT_AVAILABLE
from tests.functional.graphql.conftest import World
from tests.support.cache_rows import add_blob, add_manifest

# From GitLab's merge request that added these fields (!68605), verbatim but for the path.
GITLAB_EXAMPLE_QUERY = """query { group(fullPath: "acme") { id, dependencyProxyBlobCount dependencyProxyImageCount dependencyProxyTotalSize dependencyProxySetting { enabled } dependencyProxyManifests { nodes { fileName imageName size createdAt updatedAt digest } } dependencyProxyBlobs { nodes { fileName size createdAt updatedAt } } } }"""  # noqa: E501

# From GitLab's docs ("Reduce dependency proxy storage"), verbatim but for the path.
GITLAB_DOCS_TTL_MUTATION = """mutation {
  updateDependencyProxyImageTtlGroupPolicy(input:
    {
      groupPath: "acme",
      enabled: true,
      ttl: 90
    }
  ) {
    dependencyProxyImageTtlPolicy {
      enabled
      ttl
    }
    errors
  }
}"""


async def test_gitlab_example_query_runs_verbatim(world: World) -> None:
    manifest = await add_manifest(world.acme, "alpine", "latest", size=1_234_067)
    await add_blob(world.acme, "layer", size=500)
    data = await world.data(GITLAB_EXAMPLE_QUERY, as_user="owner")
    group = data["group"]
    assert group["id"] == f"gid://dockyard/Group/{world.acme.id}"
    assert group["dependencyProxyBlobCount"] == 1
    assert group["dependencyProxyImageCount"] == 1
    assert group["dependencyProxyTotalSize"] == "1.18 MB"
    assert group["dependencyProxySetting"] == {"enabled": True}
    [node] = group["dependencyProxyManifests"]["nodes"]
    assert node["fileName"] == "alpine:latest.json"
    assert node["imageName"] == "alpine:latest"
    assert node["size"] == "1234067"
    assert node["digest"] == manifest.digest
    assert node["createdAt"].endswith("Z")
    [blob] = group["dependencyProxyBlobs"]["nodes"]
    assert blob["size"] == "500" and blob["fileName"].endswith(".gz")


async def test_gitlab_docs_ttl_mutation_runs_verbatim(world: World) -> None:
    data = await world.data(GITLAB_DOCS_TTL_MUTATION, as_user="owner")
    payload = data["updateDependencyProxyImageTtlGroupPolicy"]
    assert payload == {"dependencyProxyImageTtlPolicy": {"enabled": True, "ttl": 90}, "errors": []}
    policy = await ImageTtlGroupPolicy.get(group_id=world.acme.id)
    assert policy.enabled and policy.ttl == 90


async def test_every_group_field(world: World) -> None:
    manifest = await add_manifest(world.acme, "library/nginx", "1.27", size=700)
    await add_blob(world.acme, "one", size=300)
    await GroupCacheStatistic.create(
        group_id=world.acme.id,
        manifest_hits=3,
        manifest_misses=1,
        bytes_from_cache=4096,
        bytes_from_upstream=1024,
    )
    query = """{ group(fullPath: "ACME") {
        id fullPath name path description
        dependencyProxyImagePrefix dependencyProxyImageCount dependencyProxyBlobCount
        dependencyProxyTotalSize dependencyProxyTotalSizeBytes dependencyProxyTotalSizeInBytes
        dependencyProxySetting { enabled identity revalidationInterval }
        dependencyProxyImageTtlPolicy { enabled ttl createdAt updatedAt }
        dependencyProxyStatistics { manifestHits manifestMisses blobHits blobMisses hitRatio
            bytesFromCache bytesFromUpstream pendingDestructionCount }
        dependencyProxyUpstreamRateLimit { limit remaining }
        dependencyProxyManifests { nodes { id status lastPulledAt contentType } }
    } }"""
    group = (await world.data(query, as_user="owner"))["group"]
    assert group["fullPath"] == "Acme" and group["name"] == "Acme Corp"
    assert group["dependencyProxyImagePrefix"] == "dockyard.test/acme/dependency_proxy/containers"
    assert group["dependencyProxyTotalSize"] == "1000 Bytes"
    assert group["dependencyProxyTotalSizeBytes"] == "1000"  # BigInt is a string
    assert group["dependencyProxyTotalSizeInBytes"] == 1000
    assert group["dependencyProxySetting"] == {
        "enabled": True,
        "identity": None,
        "revalidationInterval": 0,
    }
    assert group["dependencyProxyImageTtlPolicy"] == {
        "enabled": False,
        "ttl": 90,
        "createdAt": None,
        "updatedAt": None,
    }
    statistics = group["dependencyProxyStatistics"]
    assert statistics["manifestHits"] == 3 and statistics["hitRatio"] == 0.75
    assert statistics["bytesFromCache"] == "4096"
    assert group["dependencyProxyUpstreamRateLimit"] is None  # nothing seen yet
    [node] = group["dependencyProxyManifests"]["nodes"]
    assert node["id"] == f"gid://dockyard/DependencyProxy::Manifest/{manifest.id}"
    assert node["status"] == "DEFAULT"


async def test_guest_reads_the_cache_but_not_the_settings(world: World) -> None:
    await add_manifest(world.acme, "alpine", "latest")
    query = """{ group(fullPath: "acme") { dependencyProxyImageCount
        dependencyProxySetting { enabled } dependencyProxyImageTtlPolicy { ttl } } }"""
    group = (await world.data(query, as_user="guest"))["group"]
    assert group == {
        "dependencyProxyImageCount": 1,
        "dependencyProxySetting": None,
        "dependencyProxyImageTtlPolicy": None,
    }


async def test_strangers_and_anonymous_see_nothing(world: World) -> None:
    await add_manifest(world.acme, "alpine", "latest")
    query = '{ group(fullPath: "acme") { id dependencyProxyImageCount } }'
    assert (await world.data(query, as_user="stranger"))["group"] is None
    assert (await world.data(query))["group"] is None
    missing = '{ group(fullPath: "no/such/group") { id } }'
    assert (await world.data(missing, as_user="stranger"))["group"] is None


async def test_admin_sees_every_group(world: World) -> None:
    query = '{ group(fullPath: "other") { fullPath } }'
    assert (await world.data(query, as_user="admin"))["group"] == {"fullPath": "other"}


async def test_groups_search_and_current_user(world: World) -> None:
    query = "{ groups(search: %s) { nodes { fullPath } } currentUser { username } }"
    data = await world.data(query % '"ac"', as_user="guest")
    assert data == {
        "groups": {"nodes": [{"fullPath": "Acme"}]},
        "currentUser": {"username": "gina"},
    }
    data = await world.data(query % "null", as_user="admin")
    assert [node["fullPath"] for node in data["groups"]["nodes"]] == ["Acme", "other"]
    anonymous = await world.data(query % "null")
    assert anonymous == {"groups": {"nodes": []}, "currentUser": None}


async def test_unknown_token_is_rejected_not_treated_as_anonymous(world: World) -> None:
    response = await world.client.post(
        "/api/graphql",
        json={"query": "{ currentUser { username } }"},
        headers={"Authorization": "Bearer dyp_not-a-real-token"},
    )
    assert response.status_code == 401
    response = await world.client.post(
        "/api/graphql",
        json={"query": "{ currentUser { username } }"},
        headers={"PRIVATE-TOKEN": world.tokens["owner_registry"]},
    )
    assert response.status_code == 403


async def test_private_token_header_and_get_requests_work(world: World) -> None:
    response = await world.client.get(
        "/api/graphql",
        params={"query": "{ currentUser { username } }"},
        headers={"PRIVATE-TOKEN": world.tokens["guest"]},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"currentUser": {"username": "gina"}}}


async def test_mutation_of_an_invisible_group_does_not_reveal_it(world: World) -> None:
    query = 'mutation { clearDependencyProxyCache(input: {groupPath: "%s"}) { errors } }'
    for path in ("acme", "does-not-exist"):
        body = await world.gql(query % path, as_user="stranger")
        assert body["data"] == {"clearDependencyProxyCache": None}
        assert [error["message"] for error in body["errors"]] == [RESOURCE_NOT_AVAILABLE]
