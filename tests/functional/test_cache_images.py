"""Deleting and pinning one cached image: what goes, what stays, who may (issue 13)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from app import clock
from app.accounts import records as accounts
from app.accounts.principal import Principal
from app.config import Settings
from app.dependency_proxy.cached_images import ImageName, ManifestRef
from app.dependency_proxy.cleanup import run_cleanup_once
from app.dependency_proxy.errors import InvalidReference
from app.dependency_proxy.models import Blob, CacheStatus, ImageTtlGroupPolicy, Manifest
from app.dependency_proxy.services.delete_manifest import delete_manifest
from app.dependency_proxy.services.pin_manifest import pin_manifest
from app.dependency_proxy.storage.local import LocalBlobStore
from app.errors import NotFound, PermissionDenied
from app.groups import records as groups
from app.groups.models import AccessLevel, Group
from tests.functional.test_cleanup import START, CleanupRuntime
from tests.support.image_rows import (
    cache_manifest,
    image_manifest,
    index_manifest,
    sha256,
    store_blob,
)

CONFIG, BASE, APP = b"config of app", b"base layer", b"app layer"
OTHER_CONFIG = b"config of tool"


@pytest.fixture
async def runtime(database: Settings) -> AsyncIterator[CleanupRuntime]:
    clock.set_clock(lambda: START)
    yield CleanupRuntime(settings=database, store=LocalBlobStore(database.data_dir))


async def member(group: Group, name: str, level: AccessLevel) -> Principal:
    user = await accounts.find_user(name) or await accounts.create_user(
        name, f"{name}@example.com", f"{name}-password"
    )
    await groups.add_member(group, user, level)
    return Principal(user=user)


def named(group: Group, text: str) -> ManifestRef:
    return ManifestRef(group_id=group.id, name=ImageName.parse(text))


async def blob_statuses(group: Group) -> dict[str, CacheStatus]:
    return {row.digest: CacheStatus(row.status) for row in await Blob.filter(group_id=group.id)}


async def test_delete_releases_only_blobs_no_other_image_of_the_group_names(
    runtime: CleanupRuntime,
) -> None:
    acme = await groups.create_group("acme")
    owner = await member(acme, "olga", AccessLevel.OWNER)
    blobs = {
        content: await store_blob(runtime.store, acme, content)
        for content in (CONFIG, BASE, APP, OTHER_CONFIG)
    }
    app = await cache_manifest(acme, "app", "1.0", image_manifest(CONFIG, BASE, APP))
    await cache_manifest(acme, "tool", "2.0", image_manifest(OTHER_CONFIG, BASE))

    result = await delete_manifest(owner, named(acme, "app:1.0"))

    assert result.deleted == ("app:1.0",) and result.blobs_released == 2
    assert not await Manifest.filter(id=app.id).exists()  # the row goes at once
    statuses = await blob_statuses(acme)
    assert statuses[blobs[CONFIG].digest] == CacheStatus.PENDING_DESTRUCTION
    assert statuses[blobs[APP].digest] == CacheStatus.PENDING_DESTRUCTION
    assert statuses[blobs[BASE].digest] == CacheStatus.DEFAULT  # tool:2.0 still uses it
    cleaned = await run_cleanup_once(runtime)
    assert (cleaned.blobs_deleted, cleaned.files_deleted) == (2, 2)
    assert await runtime.store.stat(blobs[APP].digest) is None
    assert await runtime.store.stat(blobs[BASE].digest) is not None


async def test_delete_in_one_group_keeps_the_bytes_another_group_holds(
    runtime: CleanupRuntime,
) -> None:
    acme = await groups.create_group("acme")
    beta = await groups.create_group("beta")
    owner = await member(acme, "olga", AccessLevel.OWNER)
    content = image_manifest(CONFIG, BASE)
    for group in (acme, beta):
        await store_blob(runtime.store, group, CONFIG)
        await store_blob(runtime.store, group, BASE)
        await cache_manifest(group, "app", "1.0", content)

    await delete_manifest(owner, named(acme, "app:1.0"))
    cleaned = await run_cleanup_once(runtime)

    assert (cleaned.blobs_deleted, cleaned.files_deleted) == (2, 0)
    assert await Blob.filter(group_id=acme.id).count() == 0
    assert await Manifest.filter(group_id=beta.id).count() == 1
    for layer in (CONFIG, BASE):
        beta_row = await Blob.get(group_id=beta.id, digest=sha256(layer))
        assert beta_row.status == CacheStatus.DEFAULT
        assert await runtime.store.stat(beta_row.digest) is not None


async def test_delete_an_index_with_or_without_its_platform_manifests(
    runtime: CleanupRuntime,
) -> None:
    acme = await groups.create_group("acme")
    owner = await member(acme, "olga", AccessLevel.OWNER)
    amd64, arm64 = image_manifest(CONFIG, BASE), image_manifest(OTHER_CONFIG, APP)
    for layer in (CONFIG, BASE, OTHER_CONFIG, APP):
        await store_blob(runtime.store, acme, layer)
    index = index_manifest({"linux/amd64": amd64, "linux/arm64": arm64})
    for tag in ("1.0", "1.0-again"):
        await cache_manifest(acme, "app", tag, index)
    index_row = await Manifest.get(group_id=acme.id, reference="1.0")
    for platform in (amd64, arm64):
        row = await cache_manifest(acme, "app", "sha256:x", platform)
        await Manifest.filter(id=row.id).update(
            reference=row.digest, file_name=f"app:{row.digest}.json"
        )

    alone = await delete_manifest(owner, ManifestRef(manifest_id=index_row.id))
    assert alone.deleted == ("app:1.0",) and alone.blobs_released == 0
    assert await Manifest.filter(group_id=acme.id).count() == 3

    both = await delete_manifest(owner, named(acme, "app:1.0-again"), with_platforms=True)
    assert both.deleted[0] == "app:1.0-again" and len(both.deleted) == 3
    assert both.blobs_released == 4
    assert await Manifest.filter(group_id=acme.id).count() == 0


@pytest.mark.parametrize(
    "who", ["Maintainer", "Developer", "Owner of another group", "Owner, read_api token"]
)
async def test_only_owners_of_the_group_may_delete_or_pin(
    runtime: CleanupRuntime, who: str
) -> None:
    acme = await groups.create_group("acme")
    beta = await groups.create_group("beta")
    row = await cache_manifest(acme, "app", "1.0", image_manifest(CONFIG, BASE))
    await store_blob(runtime.store, acme, BASE)
    if who == "Owner of another group":
        principal = await member(beta, "bob", AccessLevel.OWNER)
        refused: type[Exception] = NotFound  # acme is private to bob: it looks missing
    elif who == "Owner, read_api token":
        user = (await member(acme, "olga", AccessLevel.OWNER)).user
        assert user is not None
        principal = Principal(user=user, scopes=frozenset({"read_api"}))
        refused = PermissionDenied
    else:
        principal = await member(acme, "mia", AccessLevel[who.upper()])
        refused = PermissionDenied

    with pytest.raises(refused):
        await delete_manifest(principal, ManifestRef(manifest_id=row.id))
    with pytest.raises(refused):
        await pin_manifest(principal, named(acme, "app:1.0"))
    kept = await Manifest.get(id=row.id)
    assert kept.status == CacheStatus.DEFAULT and not kept.pinned
    assert set((await blob_statuses(acme)).values()) == {CacheStatus.DEFAULT}


async def test_a_page_form_cannot_name_another_groups_image(runtime: CleanupRuntime) -> None:
    acme = await groups.create_group("acme")
    beta = await groups.create_group("beta")
    owner = await member(acme, "olga", AccessLevel.OWNER)
    await member(beta, "olga", AccessLevel.OWNER)
    theirs = await cache_manifest(beta, "app", "1.0", image_manifest(CONFIG))
    with pytest.raises(NotFound):
        await delete_manifest(owner, ManifestRef(manifest_id=theirs.id, group_id=acme.id))
    assert await Manifest.filter(id=theirs.id).exists()


async def test_pinned_image_survives_the_ttl_cleanup(runtime: CleanupRuntime) -> None:
    acme = await groups.create_group("acme")
    owner = await member(acme, "olga", AccessLevel.OWNER)
    await ImageTtlGroupPolicy.create(group_id=acme.id, enabled=True, ttl=7)
    amd64 = image_manifest(CONFIG, BASE)
    for layer in (CONFIG, BASE, APP, OTHER_CONFIG):
        await store_blob(runtime.store, acme, layer)
    await cache_manifest(acme, "app", "1.0", index_manifest({"linux/amd64": amd64}))
    platform = await cache_manifest(acme, "app", "sha256:x", amd64)
    await Manifest.filter(id=platform.id).update(reference=platform.digest)
    await cache_manifest(acme, "tool", "2.0", image_manifest(OTHER_CONFIG, APP))

    pinned = await pin_manifest(owner, named(acme, "app:1.0"))
    assert pinned.images == ("app:1.0",) and pinned.pinned
    clock.set_clock(lambda: START + timedelta(days=8))
    result = await run_cleanup_once(runtime)

    # tool:2.0 and its blobs expire; the pinned index, its platform and its blobs stay.
    assert (result.manifests_expired, result.blobs_expired) == (1, 2)
    left = (
        await Manifest.filter(group_id=acme.id)
        .order_by("id")
        .values_list("image_name", "reference")
    )
    assert left == [("app", "1.0"), ("app", platform.digest)]
    for layer in (CONFIG, BASE):
        assert await runtime.store.stat(sha256(layer)) is not None
    assert await runtime.store.stat(sha256(APP)) is None

    await pin_manifest(owner, named(acme, "app:1.0"), pinned=False)
    result = await run_cleanup_once(runtime)
    assert (result.manifests_expired, result.blobs_expired) == (2, 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alpine", ("alpine", "latest")),
        ("library/alpine:3.19", ("library/alpine", "3.19")),
        ("ghcr.io/owner/tool@sha256:" + "a" * 64, ("ghcr.io/owner/tool", "sha256:" + "a" * 64)),
    ],
)
def test_image_names_as_users_pull_them(text: str, expected: tuple[str, str]) -> None:
    name = ImageName.parse(text)
    assert (name.image, name.reference) == expected


@pytest.mark.parametrize("text", ["Alpine", "alpine:", "alpine@sha256:abc", "../etc:passwd"])
def test_bad_image_names_are_refused(text: str) -> None:
    with pytest.raises(InvalidReference):
        ImageName.parse(text)


async def dockyard(
    settings: Settings, *args: str, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    """The `dockyard` command on the test's data folder (the CLI acts as the operator)."""
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("DOCKYARD_")},
        "DOCKYARD_DATA_DIR": str(settings.data_dir),
    }
    command = [str(Path(sys.executable).parent / "dockyard"), *args]
    result = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode == 0) is ok, result.stderr
    return result


async def test_cli_deletes_pins_and_unpins_one_image(runtime: CleanupRuntime) -> None:
    acme = await groups.create_group("acme")
    for layer in (CONFIG, BASE):
        await store_blob(runtime.store, acme, layer)
    app = await cache_manifest(acme, "app", "1.0", image_manifest(CONFIG, BASE))
    tool = await cache_manifest(acme, "library/tool", "latest", image_manifest(CONFIG))
    settings = runtime.settings

    pinned = json.loads(
        (await dockyard(settings, "cache", "pin", "acme", "library/tool", "--json")).stdout
    )
    assert pinned == {"group": "acme", "images": ["library/tool:latest"], "pinned": True}
    assert (await Manifest.get(id=tool.id)).pinned
    unpinned = await dockyard(settings, "cache", "unpin", "ACME", "library/tool:latest")
    assert unpinned.stdout.strip() == "unpinned library/tool:latest in acme"
    assert not (await Manifest.get(id=tool.id)).pinned

    deleted = json.loads(
        (await dockyard(settings, "cache", "delete", "acme", f"app@{app.digest}", "--json")).stdout
    )
    assert deleted == {"group": "acme", "deleted": ["app:1.0"], "blobs_released": 1}
    assert not await Manifest.filter(id=app.id).exists()

    again = await dockyard(settings, "cache", "delete", "acme", "app:1.0", ok=False)
    assert again.stderr.strip() == "error: no cached image app:1.0 in acme"
    bad = await dockyard(settings, "cache", "delete", "acme", "App:1.0", ok=False)
    assert bad.stderr.strip() == "error: invalid image name 'App'"
    missing = await dockyard(settings, "cache", "pin", "nope", "app", ok=False)
    assert missing.stderr.strip() == "error: group 'nope' not found"
