"""destroyDependencyProxyManifest and updateDependencyProxyManifest (pinning): Owners only."""

from __future__ import annotations

import pytest

from app.dependency_proxy.models import Blob, CacheStatus, Manifest
from app.gql.permissions import RESOURCE_NOT_AVAILABLE
from tests.functional.graphql.conftest import World, operation
from tests.support.cache_rows import add_manifest
from tests.support.image_rows import cache_manifest, image_manifest, sha256

DESTROY = operation("destroyDependencyProxyManifest")
UPDATE = operation("updateDependencyProxyManifest")
MANIFESTS = """query ($path: ID!) { group(fullPath: $path) {
  dependencyProxyManifests(first: 10) { nodes { id imageName pinned } } } }"""


def gid(manifest: Manifest) -> str:
    return f"gid://dockyard/DependencyProxy::Manifest/{manifest.id}"


def denied(body: dict) -> bool:
    return [error["message"] for error in body.get("errors", [])] == [RESOURCE_NOT_AVAILABLE]


async def test_owner_destroys_one_manifest_and_its_unshared_blobs(world: World) -> None:
    content = image_manifest(b"config", b"layer")
    target = await cache_manifest(world.acme, "app", "1.0", content)
    kept = await add_manifest(world.acme, "alpine", "latest")
    for layer in (b"config", b"layer"):
        await Blob.create(
            group_id=world.acme.id, digest=sha256(layer), size=5, read_at=kept.read_at
        )

    payload = (await world.data(DESTROY, {"id": gid(target)}, as_user="owner"))[
        "destroyDependencyProxyManifest"
    ]

    assert payload == {
        "clientMutationId": None,
        "errors": [],
        "deletedImages": ["app:1.0"],
        "blobsReleased": 2,
    }
    listed = await world.data(MANIFESTS, {"path": "acme"}, as_user="owner")
    names = [node["imageName"] for node in listed["group"]["dependencyProxyManifests"]["nodes"]]
    assert names == ["alpine:latest"]
    assert await Blob.filter(status=CacheStatus.PENDING_DESTRUCTION).count() == 2


@pytest.mark.parametrize("as_user", ["guest", "stranger", "owner_read_api", None])
async def test_others_cannot_destroy_or_pin(world: World, as_user: str | None) -> None:
    target = await add_manifest(world.acme, "alpine", "latest")
    for query, variables in (
        (DESTROY, {"id": gid(target)}),
        (UPDATE, {"id": gid(target), "pinned": True}),
    ):
        body = await world.gql(query, variables, as_user=as_user)
        assert denied(body), body
    row = await Manifest.get(id=target.id)
    assert row.status == CacheStatus.DEFAULT and not row.pinned


async def test_an_id_of_nothing_is_the_same_refusal(world: World) -> None:
    for ident in ("gid://dockyard/DependencyProxy::Manifest/999", "gid://dockyard/Group/1", "x"):
        assert denied(await world.gql(DESTROY, {"id": ident}, as_user="owner"))


async def test_owner_pins_and_unpins(world: World) -> None:
    target = await add_manifest(world.acme, "alpine", "3.19")
    payload = (await world.data(UPDATE, {"id": gid(target), "pinned": True}, as_user="owner"))[
        "updateDependencyProxyManifest"
    ]
    assert payload["errors"] == []
    assert payload["dependencyProxyManifest"] == {
        "id": gid(target),
        "imageName": "alpine:3.19",
        "pinned": True,
    }
    listed = await world.data(MANIFESTS, {"path": "acme"}, as_user="guest")
    assert listed["group"]["dependencyProxyManifests"]["nodes"][0]["pinned"] is True
    await world.data(UPDATE, {"id": gid(target), "pinned": False}, as_user="admin")
    assert not (await Manifest.get(id=target.id)).pinned
