"""Migration 0007 on a database that already holds duplicate live rows (several worker
processes could make them before): it keeps one per (group, digest) and per (group,
file name), the oldest blob row and the newest manifest row (the one served), and
only then refuses new duplicates."""

from pathlib import Path

import pytest
from tortoise.exceptions import IntegrityError
from tortoise.migrations.api.migrate import migrate

from app import clock, db
from app.config import load_settings
from app.dependency_proxy.models import Blob, CacheStatus, Manifest
from app.groups import records as groups
from tests.support.cache_rows import digest_of


async def test_migration_folds_duplicate_live_rows_then_refuses_new_ones(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    settings = load_settings({}, data_dir=tmp_path, database_url=f"sqlite://{path}")
    config = db.tortoise_config(settings.database_url)
    await migrate(config=config, app_labels=["models"], target="models.0006_manifest_pins")
    await db.init_db(settings)
    try:
        group = await groups.create_group("acme")
        now, layer = clock.now(), digest_of("layer")
        blobs = [
            await Blob.create(group_id=group.id, digest=layer, size=5, read_at=now)
            for _ in range(3)
        ]
        await Blob.create(
            group_id=group.id, digest=layer, size=5, read_at=now, status=CacheStatus.ERROR
        )
        manifests = [
            await Manifest.create(
                group_id=group.id,
                file_name="library/alpine:3.19.json",
                image_name="library/alpine",
                reference="3.19",
                digest=digest_of(f"manifest {n}"),
                content_type="application/vnd.oci.image.manifest.v1+json",
                size=2,
                content=b"{}",
                read_at=now,
                checked_at=now,
            )
            for n in range(3)
        ]
    finally:
        await db.close_db()

    await db.migrate(settings)

    await db.init_db(settings)
    try:
        live = await Blob.filter(group_id=group.id, status=CacheStatus.DEFAULT)
        assert [row.id for row in live] == [blobs[0].id]
        assert await Blob.filter(group_id=group.id, status=CacheStatus.ERROR).count() == 1
        assert [row.id for row in await Manifest.filter(group_id=group.id)] == [manifests[-1].id]
        with pytest.raises(IntegrityError):
            await Blob.create(group_id=group.id, digest=layer, size=5, read_at=now)
    finally:
        await db.close_db()
