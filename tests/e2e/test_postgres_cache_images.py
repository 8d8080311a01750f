"""Deleting and pinning one image on PostgreSQL: the release of blobs and the TTL
expiry's statements that leave out what pins protect (`FOR UPDATE SKIP LOCKED`
there) do on PostgreSQL what the SQLite suite proves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from tortoise.backends.base import executor as base_executor

from app import clock, db
from app.config import load_settings
from app.dependency_proxy.cached_images import ImageName, ManifestRef
from app.dependency_proxy.cleanup import run_cleanup_once
from app.dependency_proxy.models import Blob, CacheStatus, ImageTtlGroupPolicy, Manifest
from app.dependency_proxy.services.delete_manifest import delete_manifest
from app.dependency_proxy.services.pin_manifest import pin_manifest
from app.dependency_proxy.storage.local import LocalBlobStore
from app.groups import records as groups
from tests.functional.test_cleanup import START, CleanupRuntime
from tests.support.image_rows import (
    cache_manifest,
    image_manifest,
    index_manifest,
    sha256,
    store_blob,
)
from tests.support.operator import OPERATOR
from tests.support.postgres import PostgresServer, postgres_bin

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed"),
]


@pytest.fixture
async def pg_runtime(
    postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[CleanupRuntime]:
    # Tortoise caches each model's INSERT per connection name: tests on SQLite
    # in this process left "default"'s with `?` placeholders.
    monkeypatch.setattr(base_executor, "EXECUTOR_CACHE", {})
    url = postgres.create_database("cache_images")
    settings = load_settings({}, data_dir=tmp_path, database_url=url)
    await db.migrate(settings)
    await db.init_db(settings)
    clock.set_clock(lambda: START)
    try:
        yield CleanupRuntime(settings=settings, store=LocalBlobStore(tmp_path))
    finally:
        await db.close_db()


async def test_delete_and_pins_on_postgres(pg_runtime: CleanupRuntime) -> None:
    acme = await groups.create_group("acme")
    beta = await groups.create_group("beta")
    store = pg_runtime.store
    for layer in (b"config", b"base", b"app", b"tool"):
        await store_blob(store, acme, layer)
    await store_blob(store, beta, b"app")
    await cache_manifest(acme, "app", "1.0", image_manifest(b"config", b"base", b"app"))
    await cache_manifest(acme, "tool", "1.0", image_manifest(b"config", b"tool"))

    deleted = await delete_manifest(
        OPERATOR, ManifestRef(group_id=acme.id, name=ImageName.parse("app:1.0"))
    )
    assert deleted.blobs_released == 2  # base and app; config is tool's too
    cleaned = await run_cleanup_once(pg_runtime)
    assert (cleaned.blobs_deleted, cleaned.files_deleted) == (2, 1)  # beta holds app's bytes
    assert await store.stat(sha256(b"app")) is not None
    assert await store.stat(sha256(b"base")) is None

    amd64 = image_manifest(b"config", b"tool")
    await cache_manifest(acme, "multi", "2.0", index_manifest({"linux/amd64": amd64}))
    await cache_manifest(acme, "multi", sha256(amd64), amd64)
    await pin_manifest(OPERATOR, ManifestRef(group_id=acme.id, name=ImageName.parse("multi:2.0")))
    await ImageTtlGroupPolicy.create(group_id=acme.id, enabled=True, ttl=1)
    clock.set_clock(lambda: START + timedelta(days=2))
    expired = await run_cleanup_once(pg_runtime)
    # tool:1.0 expires; its blobs are the pinned platform's, so they stay.
    assert (expired.manifests_expired, expired.blobs_expired) == (1, 0)
    left = await Manifest.filter(group_id=acme.id).values_list("image_name", flat=True)
    assert sorted(left) == ["multi", "multi"]
    statuses = set(await Blob.filter(group_id=acme.id).values_list("status", flat=True))
    assert statuses == {CacheStatus.DEFAULT}


async def test_eviction_on_postgres(pg_runtime: CleanupRuntime) -> None:
    """Group limit and instance budget on PostgreSQL: the same order, the same exclusions,
    the released blobs deleted by the same pass (`SKIP LOCKED` claims there)."""
    from app.dependency_proxy.cleanup import evict_over_limits
    from app.instance.services import update_instance_settings
    from tests.functional.test_eviction import MIB, images_of, limit, pulled

    acme = await groups.create_group("acme")
    beta = await groups.create_group("beta")
    await pulled(pg_runtime, acme, "pinned", timedelta(days=4))
    await pulled(pg_runtime, acme, "oldest", timedelta(days=3))
    await pulled(pg_runtime, beta, "other", timedelta(days=2))
    await pulled(pg_runtime, acme, "newest", timedelta(days=1))
    await pin_manifest(OPERATOR, ManifestRef(group_id=acme.id, name=ImageName.parse("pinned:1")))
    await limit(acme, int(1.3 * MIB))

    by_limit = await evict_over_limits(pg_runtime)
    assert [(item.image, item.reason) for item in by_limit.evicted] == [("oldest:1", "group_limit")]
    assert by_limit.files_deleted == 2  # its config and its own layer
    assert await images_of(acme) == {"pinned", "newest"}

    await update_instance_settings(OPERATOR, pg_runtime.settings, disk_budget_bytes=int(1.3 * MIB))
    by_budget = await evict_over_limits(pg_runtime)
    assert [(item.group_path, item.image) for item in by_budget.evicted] == [("beta", "other:1")]
    assert await images_of(beta) == set()
