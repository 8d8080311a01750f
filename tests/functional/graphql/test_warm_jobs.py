"""createDependencyProxyWarmJob and Group.dependencyProxyWarmJobs (issue 13 point 2)."""

from __future__ import annotations

import pytest

from app.dependency_proxy.models import WarmJob
from app.gql.permissions import RESOURCE_NOT_AVAILABLE
from tests.functional.graphql.conftest import World, operation

CREATE = operation("createDependencyProxyWarmJob")
JOBS = operation("getDependencyProxyWarmJobs")


async def test_owner_starts_a_warm_job_and_follows_it(world: World) -> None:
    variables = {"input": {"groupPath": "acme", "images": ["alpine:3.19", "busybox"]}}

    payload = (await world.data(CREATE, variables, as_user="owner"))["createDependencyProxyWarmJob"]

    assert payload["errors"] == []
    job = payload["warmJob"]
    assert job["state"] == "QUEUED" and job["platforms"] == ["linux/amd64"]
    assert job["images"] == [
        {"image": "alpine:3.19", "state": "QUEUED"},
        {"image": "busybox:latest", "state": "QUEUED"},
    ]
    listed = await world.data(JOBS, {"fullPath": "acme", "id": job["id"]}, as_user="guest")
    (seen,) = listed["group"]["dependencyProxyWarmJobs"]
    assert seen["id"] == job["id"] and seen["createdBy"] == "olga"
    assert seen["images"][0] == {
        "image": "alpine:3.19",
        "state": "QUEUED",
        "layersTotal": 0,
        "layersDone": 0,
        "bytesTotal": "0",  # BigInt, as GitLab sends it: a string
        "bytesDone": "0",
        "errorMessage": None,
    }


@pytest.mark.parametrize(
    ("images", "message"),
    [
        ([], "name at least one image"),
        (["Not An Image"], "is not an image reference"),
        (["quay.io/org/tool"], "has no upstream for quay.io"),
    ],
)
async def test_bad_requests_are_payload_errors(
    world: World, images: list[str], message: str
) -> None:
    variables = {"input": {"groupPath": "acme", "images": images}}
    payload = (await world.data(CREATE, variables, as_user="owner"))["createDependencyProxyWarmJob"]
    assert payload["warmJob"] is None
    assert len(payload["errors"]) == 1 and message in payload["errors"][0]
    assert await WarmJob.all().count() == 0


@pytest.mark.parametrize("as_user", ["guest", "stranger", "owner_read_api", None])
async def test_others_cannot_start_a_warm(world: World, as_user: str | None) -> None:
    variables = {"input": {"groupPath": "acme", "images": ["alpine"]}}
    body = await world.gql(CREATE, variables, as_user=as_user)
    assert body["data"]["createDependencyProxyWarmJob"] is None
    assert [error["message"] for error in body["errors"]] == [RESOURCE_NOT_AVAILABLE]
    assert await WarmJob.all().count() == 0
    hidden = await world.gql(JOBS, {"fullPath": "acme"}, as_user="stranger")
    assert hidden["data"]["group"] is None
