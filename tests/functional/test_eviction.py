"""Size limits: the least recently pulled images go first, never a recent, pinned or
in-flight one; group limits and the instance budget; the CLI; who may set a limit
(issue 13 point 3)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from starlette.applications import Starlette

from app import clock, metrics
from app.accounts.principal import Principal
from app.config import Settings
from app.dependency_proxy.cleanup import evict_over_limits, run_cleanup_once
from app.dependency_proxy.models import Blob, CacheStatus, GroupSetting, Manifest
from app.dependency_proxy.services.pin_manifest import pin_manifest
from app.dependency_proxy.services.update_settings import update_dependency_proxy_settings
from app.dependency_proxy.storage.local import LocalBlobStore
from app.errors import InvalidInput, NotFound, PermissionDenied
from app.groups import records as groups
from app.groups.models import AccessLevel, Group
from app.instance.services import get_instance_settings, update_instance_settings
from tests.functional.test_cache_images import dockyard, member, named
from tests.functional.test_cleanup import START, CleanupRuntime
from tests.functional.test_metrics import admin_and_user_tokens
from tests.support.image_rows import cache_manifest, image_manifest, sha256, store_blob

OPERATOR = Principal.operator()
KIB = 1024
MIB = 1024 * KIB
BASE = b"base layer shared by every image " * 1000  # ~32 KiB


@pytest.fixture
async def runtime(database: Settings) -> AsyncIterator[CleanupRuntime]:
    clock.set_clock(lambda: START)
    yield CleanupRuntime(settings=database, store=LocalBlobStore(database.data_dir))


def layer(name: str, size: int = 512 * KIB) -> bytes:
    """Incompressible bytes of about `size`, different for each name."""
    seed = name.encode().ljust(16, b".")
    return (seed * (size // len(seed) + 1))[:size] + os.urandom(16)


async def pulled(
    runtime: CleanupRuntime, group: Group, image: str, ago: timedelta, size: int = 512 * KIB
) -> tuple[Manifest, bytes]:
    """`image:1` cached by `group`, last pulled `ago` before START: a config, the
    shared base layer and a layer of its own."""
    clock.set_clock(lambda: START - ago)
    config, own = f"config of {image}".encode(), layer(image, size)
    for content in (config, BASE, own):
        if not await Blob.filter(group_id=group.id, digest=sha256(content)).exists():
            await store_blob(runtime.store, group, content)
    row = await cache_manifest(group, image, "1", image_manifest(config, BASE, own))
    clock.set_clock(lambda: START)
    return row, own


async def images_of(group: Group) -> set[str]:
    rows = await Manifest.filter(group_id=group.id, status=CacheStatus.DEFAULT)
    return {row.image_name for row in rows}


async def limit(group: Group, size: int | None) -> None:
    await update_dependency_proxy_settings(
        OPERATOR, group, Settings(), size_limit_bytes=size, remove_size_limit=size is None
    )


def stored(runtime: CleanupRuntime, content: bytes) -> bool:
    return runtime.store.local_path(sha256(content)) is not None


async def test_over_its_limit_a_group_loses_its_least_recently_pulled_images_first(
    runtime: CleanupRuntime,
) -> None:
    acme = await groups.create_group("acme")
    _, oldest_layer = await pulled(runtime, acme, "oldest", timedelta(days=3))
    await pulled(runtime, acme, "middle", timedelta(days=2))
    await pulled(runtime, acme, "newest", timedelta(days=1))
    await limit(acme, int(1.3 * MIB))  # three images of ~550 KiB: one must go
    evicted_before = (
        metrics.registry.get_sample_value(
            "dockyard_evicted_images_total", {"reason": "group_limit"}
        )
        or 0.0
    )

    result = await run_cleanup_once(runtime)

    assert await images_of(acme) == {"middle", "newest"}
    assert result.images_evicted == 1
    assert not stored(runtime, oldest_layer)  # its own layer's file is gone now
    assert stored(runtime, BASE)  # the other images still name the base layer
    statuses = {row.digest: row.status for row in await Blob.filter(group_id=acme.id)}
    assert sha256(oldest_layer) not in statuses and statuses[sha256(BASE)] == CacheStatus.DEFAULT
    after = await evict_over_limits(runtime, dry_run=True)
    assert after.plan.over == ()  # under its limit now
    evicted_after = metrics.registry.get_sample_value(
        "dockyard_evicted_images_total", {"reason": "group_limit"}
    )
    assert evicted_after == evicted_before + 1
    assert runtime.usage is not None and runtime.usage[0] <= int(1.3 * MIB)


async def test_recent_pinned_and_downloading_images_are_never_evicted(
    runtime: CleanupRuntime,
) -> None:
    acme = await groups.create_group("acme")
    await pulled(runtime, acme, "pinned", timedelta(days=5))
    _, downloading = await pulled(runtime, acme, "downloading", timedelta(days=4))
    await pulled(runtime, acme, "evictable", timedelta(days=3))
    await pulled(runtime, acme, "recent", timedelta(minutes=9))
    await pin_manifest(OPERATOR, named(acme, "pinned:1"))
    runtime.downloads.running.add(sha256(downloading))  # a pull is fetching that layer
    await limit(acme, 1 * MIB)

    result = await evict_over_limits(runtime)

    assert [item.image for item in result.evicted] == ["evictable:1"]
    assert await images_of(acme) == {"pinned", "downloading", "recent"}
    # Still over its limit: what is left may not go, and the pass says so.
    assert [(item.group_path, item.limit_bytes) for item in result.plan.still_over] == [
        ("acme", 1 * MIB)
    ]

    # Once the recent pull is older than ten minutes, it is the next to go.
    clock.set_clock(lambda: START + timedelta(minutes=2))
    again = await evict_over_limits(runtime)
    assert [item.image for item in again.evicted] == ["recent:1"]
    assert await images_of(acme) == {"pinned", "downloading"}


async def test_the_instance_budget_evicts_across_groups_oldest_pull_first(
    runtime: CleanupRuntime,
) -> None:
    acme = await groups.create_group("acme")
    beta = await groups.create_group("beta")
    await pulled(runtime, acme, "a-old", timedelta(days=3))
    await pulled(runtime, beta, "b-old", timedelta(days=2))
    await pulled(runtime, acme, "a-new", timedelta(days=1))
    await pulled(runtime, beta, "b-new", timedelta(hours=1))
    # Four images of ~550 KiB (the base layer counted in each group): two must go.
    await update_instance_settings(OPERATOR, runtime.settings, disk_budget_bytes=int(1.2 * MIB))
    assert (await get_instance_settings(runtime.settings)).disk_budget_bytes == int(1.2 * MIB)

    result = await evict_over_limits(runtime)

    assert [(item.group_path, item.image, item.reason) for item in result.evicted] == [
        ("acme", "a-old:1", "instance_budget"),
        ("beta", "b-old:1", "instance_budget"),
    ]
    assert await images_of(acme) == {"a-new"} and await images_of(beta) == {"b-new"}


async def test_the_disk_budget_setting_is_the_default_an_admin_overrides(
    runtime: CleanupRuntime,
) -> None:
    acme = await groups.create_group("acme")
    await pulled(runtime, acme, "old", timedelta(days=2))
    await pulled(runtime, acme, "new", timedelta(days=1))
    runtime.disk_budget = 700 * KIB  # DOCKYARD_DISK_BUDGET
    await update_instance_settings(OPERATOR, runtime.settings, disk_budget_bytes=0)  # none

    assert (await evict_over_limits(runtime, dry_run=True)).plan.evictions == ()

    await update_instance_settings(OPERATOR, runtime.settings, disk_budget_from_setting=True)
    plan = (await evict_over_limits(runtime, dry_run=True)).plan
    assert [(item.image, item.limit_bytes) for item in plan.evictions] == [("old:1", 700 * KIB)]
    assert await images_of(acme) == {"old", "new"}  # a dry run changes nothing


async def test_only_an_owner_of_the_group_sets_its_size_limit(runtime: CleanupRuntime) -> None:
    acme = await groups.create_group("acme")
    beta = await groups.create_group("beta")
    owner = await member(acme, "olga", AccessLevel.OWNER)
    maintainer = await member(acme, "max", AccessLevel.MAINTAINER)
    stranger = await member(beta, "bea", AccessLevel.OWNER)  # owns another group

    with pytest.raises(PermissionDenied):
        await update_dependency_proxy_settings(
            maintainer, acme, runtime.settings, size_limit_bytes=10 * MIB
        )
    with pytest.raises((NotFound, PermissionDenied)):
        await update_dependency_proxy_settings(
            stranger, acme, runtime.settings, size_limit_bytes=10 * MIB
        )
    with pytest.raises(InvalidInput, match="at least 1 MiB"):
        await update_dependency_proxy_settings(owner, acme, runtime.settings, size_limit_bytes=5)
    assert (await GroupSetting.get_or_none(group_id=acme.id)) is None or (
        (await GroupSetting.get(group_id=acme.id)).size_limit_bytes is None
    )

    await update_dependency_proxy_settings(owner, acme, runtime.settings, size_limit_bytes=10 * MIB)
    assert (await GroupSetting.get(group_id=acme.id)).size_limit_bytes == 10 * MIB
    await update_dependency_proxy_settings(owner, acme, runtime.settings, remove_size_limit=True)
    assert (await GroupSetting.get(group_id=acme.id)).size_limit_bytes is None


async def test_cli_sets_the_limit_and_evict_dry_run_says_what_would_go_and_why(
    runtime: CleanupRuntime,
) -> None:
    acme = await groups.create_group("acme")
    await pulled(runtime, acme, "oldest", timedelta(days=3))
    await pulled(runtime, acme, "newest", timedelta(days=1))
    settings = runtime.settings

    set_limit = await dockyard(settings, "cache", "limit", "acme", "1MiB", "--json")
    assert json.loads(set_limit.stdout) == {"group": "acme", "size_limit_bytes": MIB}
    bad = await dockyard(settings, "cache", "limit", "acme", "lots", ok=False)
    assert bad.stderr.strip() == "error: SIZE: 'lots' is not a size (say 10GiB, 500MB or bytes)"

    dry = json.loads((await dockyard(settings, "cache", "evict", "--dry-run", "--json")).stdout)
    assert [(item["group"], item["image"], item["why"]) for item in dry["evicted"]] == [
        ("acme", "oldest:1", "over group limit 1.00 MiB")
    ]
    assert dry["evicted"][0]["last_pulled"].startswith(str((START - timedelta(days=3)).date()))
    assert dry["evicted"][0]["size_bytes"] > 512 * KIB
    assert dry["over"][0]["group"] == "acme" and dry["still_over"] == []
    text = (await dockyard(settings, "cache", "evict", "acme", "--dry-run")).stdout
    assert text.startswith("would evict acme oldest:1 (")
    assert text.strip().endswith("UTC): over group limit 1.00 MiB")
    assert await images_of(acme) == {"oldest", "newest"}  # nothing went

    done = json.loads((await dockyard(settings, "cache", "evict", "--json")).stdout)
    assert [item["image"] for item in done["evicted"]] == ["oldest:1"]
    assert done["files_deleted"] == 2  # its config and its own layer
    assert await images_of(acme) == {"newest"}
    removed = await dockyard(settings, "cache", "limit", "acme", "none")
    assert removed.stdout.strip() == "acme has no size limit"


async def test_metrics_count_evictions_and_show_the_disk_against_the_budget(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    cache = app.state.cache
    runtime = CleanupRuntime(settings=app.state.settings, store=cache.store)
    acme = await groups.create_group("acme")
    await pulled(runtime, acme, "old", timedelta(days=2))
    await pulled(runtime, acme, "new", timedelta(days=1))
    await update_instance_settings(OPERATOR, app.state.settings, disk_budget_bytes=800 * KIB)
    admin, _ = await admin_and_user_tokens()

    def sample(text: str, name: str) -> float:
        found = [line for line in text.splitlines() if line.startswith(name + " ")]
        return float(found[0].split()[-1]) if found else 0.0

    before = (await client.get("/metrics", headers={"PRIVATE-TOKEN": admin})).text
    evicted = 'dockyard_evicted_images_total{reason="instance_budget"}'
    result = await run_cleanup_once(cache)
    after = (await client.get("/metrics", headers={"PRIVATE-TOKEN": admin})).text

    assert result.images_evicted == 1
    assert sample(after, evicted) == sample(before, evicted) + 1
    evicted_bytes = 'dockyard_evicted_bytes_total{reason="instance_budget"}'
    assert sample(after, evicted_bytes) - sample(before, evicted_bytes) == result.bytes_evicted > 0
    assert sample(after, "dockyard_disk_budget_bytes") == 800 * KIB
    assert 0 < sample(after, "dockyard_cache_bytes") <= 800 * KIB
    assert sample(after, "dockyard_data_dir_free_bytes") > 0
    assert sample(after, "dockyard_data_dir_size_bytes") >= sample(
        after, "dockyard_data_dir_free_bytes"
    )
