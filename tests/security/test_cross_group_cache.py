"""Bytes on disk are shared between groups; rows and the right to read are not.

Group X (zeta) pulls an image; a principal who may pull in group Y (acme) but
not in X asks for the same image through Y's path. Y must be answered by the
upstream with Y's own identity (public image: after the upstream agrees;
moved tag: the upstream's current digest; absent or private upstream: the
upstream's refusal), never from X's rows.
"""

from __future__ import annotations

import pytest

from app.dependency_proxy.models import Blob, Manifest
from app.dependency_proxy.services.update_settings import update_dependency_proxy_settings
from tests.security.registry_answers import (
    ask_for_token,
    assert_nothing_served,
    assert_oci_error,
    granted_access,
    pull,
    repository,
)
from tests.security.tenancy import FOREIGN, TOP, Credential, InProcessDockyard, Tenancy
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import Image, push_small_image
from tests.support.reference_registry import RegistryPusher
from tests.support.token_server import PULL_USER

pytestmark = pytest.mark.e2e  # the reference registry is the upstream
in_module_loop = pytest.mark.asyncio(loop_scope="module")
GROUP_X, GROUP_Y = FOREIGN, TOP


def x_puller(world: Tenancy) -> Credential:
    return world.credential("instance admin", "PAT api")


def y_puller(world: Tenancy) -> Credential:
    """May pull in Y (Guest of acme), not in X."""
    return world.credential("Guest", "PAT api")


async def pull_whole_image(
    dockyard: InProcessDockyard, credential: Credential, group: str, image: Image
) -> None:
    repo = repository(group, image.repository)
    for tail in (f"manifests/{image.tag}", f"manifests/{image.digest}"):
        answer = await pull(dockyard.http, credential, repo, tail)
        assert answer.status_code == 200 and answer.content == image.manifest
    for blob in image.blobs:
        answer = await pull(dockyard.http, credential, repo, f"blobs/{blob.digest}")
        assert answer.status_code == 200 and answer.content == blob.data


async def rows_of(world: Tenancy, group: str) -> tuple[int, int]:
    group_id = world.groups[group].id
    return (
        await Manifest.filter(group_id=group_id).count(),
        await Blob.filter(group_id=group_id).count(),
    )


@in_module_loop
async def test_y_may_not_pull_in_x(
    tenancy_dockyard: InProcessDockyard, tenancy_world: Tenancy
) -> None:
    """The premise of every test below."""
    answer = await ask_for_token(
        tenancy_dockyard.http, y_puller(tenancy_world), repository(GROUP_X)
    )
    assert answer.status_code == 200 and granted_access(answer.json()["token"]) == []


@in_module_loop
async def test_public_image_cached_by_x_reaches_y_only_after_the_upstream_agrees(
    tenancy_dockyard: InProcessDockyard,
    tenancy_world: Tenancy,
    registry_pusher: RegistryPusher,
    reference_registry: SeededReferenceRegistry,
) -> None:
    image = push_small_image(registry_pusher, "tenancy/shared", "1", seed=7001)
    await pull_whole_image(tenancy_dockyard, x_puller(tenancy_world), GROUP_X, image)
    reference_registry.reset_counts()

    repo = repository(GROUP_Y, image.repository)
    y = y_puller(tenancy_world)
    by_digest = await pull(tenancy_dockyard.http, y, repo, f"manifests/{image.digest}")
    assert by_digest.status_code == 200 and by_digest.content == image.manifest
    assert reference_registry.manifest_requests(image.digest, name=image.repository) == 1
    for blob in image.blobs:
        got = await pull(tenancy_dockyard.http, y, repo, f"blobs/{blob.digest}")
        assert got.status_code == 200 and got.content == blob.data
        # Asked with Y's identity, then served from the shared bytes (not downloaded again).
        assert reference_registry.blob_requests(blob.digest, method="HEAD") == 1
        assert reference_registry.blob_requests(blob.digest, method="GET") == 0
        assert got.headers["x-cache"] == "HIT"
        # Now Y holds the blob itself: its HEAD needs no upstream.
        head = await pull(tenancy_dockyard.http, y, repo, f"blobs/{blob.digest}", "HEAD")
        assert head.status_code == 200 and head.headers["content-length"] == str(blob.size)
        assert reference_registry.blob_requests(blob.digest, method="HEAD") == 1


@in_module_loop
async def test_a_tag_x_holds_gives_y_what_the_upstream_holds_now(
    tenancy_dockyard: InProcessDockyard, tenancy_world: Tenancy, registry_pusher: RegistryPusher
) -> None:
    # Neither group re-checks tags for an hour: X keeps serving its row; Y has no row.
    admin = x_puller(tenancy_world).principal
    for group in (GROUP_X, GROUP_Y):
        await update_dependency_proxy_settings(
            admin,
            tenancy_world.groups[group],
            tenancy_dockyard.settings,
            revalidation_interval=3600,
        )
    before = push_small_image(registry_pusher, "tenancy/moving", "1", seed=7002)
    await pull_whole_image(tenancy_dockyard, x_puller(tenancy_world), GROUP_X, before)
    after = push_small_image(registry_pusher, "tenancy/moving", "1", seed=7003)
    assert after.digest != before.digest

    x_answer = await pull(
        tenancy_dockyard.http,
        x_puller(tenancy_world),
        repository(GROUP_X, "tenancy/moving"),
        "manifests/1",
    )
    assert x_answer.headers["docker-content-digest"] == before.digest  # X's own row
    y_answer = await pull(
        tenancy_dockyard.http,
        y_puller(tenancy_world),
        repository(GROUP_Y, "tenancy/moving"),
        "manifests/1",
    )
    assert y_answer.status_code == 200
    assert y_answer.headers["docker-content-digest"] == after.digest
    assert y_answer.content == after.manifest


@in_module_loop
async def test_what_the_upstream_lacks_in_y_s_repository_is_not_served_from_x_s_cache(
    tenancy_dockyard: InProcessDockyard, tenancy_world: Tenancy, registry_pusher: RegistryPusher
) -> None:
    image = push_small_image(registry_pusher, "tenancy/only-here", "1", seed=7004)
    await pull_whole_image(tenancy_dockyard, x_puller(tenancy_world), GROUP_X, image)
    repo = repository(GROUP_Y, "tenancy/elsewhere")  # the upstream never had these there
    y = y_puller(tenancy_world)
    secrets = (image.manifest, *(blob.data or b"" for blob in image.blobs))

    for tail in (f"manifests/{image.digest}", "manifests/1"):
        answer = await pull(tenancy_dockyard.http, y, repo, tail)
        assert_oci_error(answer, 404, "MANIFEST_UNKNOWN")
        assert_nothing_served(answer, *secrets)
    for blob in image.blobs:
        for method in ("HEAD", "GET"):
            answer = await pull(tenancy_dockyard.http, y, repo, f"blobs/{blob.digest}", method)
            assert_oci_error(answer, 404, "BLOB_UNKNOWN")
            assert_nothing_served(answer, *secrets)


@in_module_loop
async def test_a_private_image_x_may_fetch_is_refused_to_y_and_leaves_nothing_behind(
    tenancy_dockyard: InProcessDockyard,
    tenancy_world: Tenancy,
    reference_registry: SeededReferenceRegistry,
) -> None:
    await update_dependency_proxy_settings(
        x_puller(tenancy_world).principal,
        tenancy_world.groups[GROUP_X],
        tenancy_dockyard.settings,
        identity=PULL_USER[0],
        secret=PULL_USER[1],
    )
    private = reference_registry.seeded.private
    await pull_whole_image(tenancy_dockyard, x_puller(tenancy_world), GROUP_X, private)
    y_rows = await rows_of(tenancy_world, GROUP_Y)

    repo = repository(GROUP_Y, private.repository)
    y = y_puller(tenancy_world)
    secrets = (private.manifest, *(blob.data or b"" for blob in private.blobs))
    tails = [f"manifests/{private.tag}", f"manifests/{private.digest}"]
    tails += [f"blobs/{blob.digest}" for blob in private.blobs]
    for _ in range(2):  # and again: a refusal leaves no grant behind
        for tail in tails:
            for method in ("HEAD", "GET"):
                answer = await pull(tenancy_dockyard.http, y, repo, tail, method)
                assert_oci_error(answer, 403, "DENIED")
                assert_nothing_served(answer, *secrets)
    assert await rows_of(tenancy_world, GROUP_Y) == y_rows
