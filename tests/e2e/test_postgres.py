"""Dockyard on PostgreSQL: the migrations build the models' schema, and a live
instance serves pulls, clears and cleans its cache with PostgreSQL holding the rows."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from tortoise import Tortoise
from tortoise.migrations.autodetector import MigrationAutodetector

from app import db
from app.config import load_settings
from tests.e2e.conftest import require
from tests.support.dockyard_server import DockyardServer
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import SeededImages
from tests.support.postgres import PostgresServer, postgres_bin

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed"),
]


async def test_migrations_build_the_models_schema_on_postgres(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database("migrations")
    settings = load_settings({}, data_dir=tmp_path, database_url=url)
    await db.migrate(settings)
    await db.migrate(settings)
    await db.init_db(settings)
    try:
        detector = MigrationAutodetector(Tortoise.apps, db.tortoise_config(url)["apps"])
        assert await detector.changes() == []
    finally:
        await db.close_db()


def test_a_live_instance_on_postgres_pulls_clears_and_cleans(
    postgres: PostgresServer,
    reference_registry_session: SeededReferenceRegistry,
    seeded_images: SeededImages,
    tmp_path: Path,
) -> None:
    url = postgres.create_database("live")
    server = DockyardServer(
        tmp_path / "dockyard",
        reference_registry_session.url,
        env={"DOCKYARD_DATABASE_URL": url},
    )
    server.cli("migrate")  # automatic migration is for SQLite only
    with server:
        account = server.provision("pat", "pg-group")
        target = tmp_path / "pulled"
        subprocess.run(
            [
                require("skopeo"),
                "copy",
                "--src-tls-verify=false",
                "--src-creds",
                f"pat:{account.token}",
                f"docker://{server.prefix(account.group)}/alpine:3.19",
                f"dir:{target}",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        assert (target / "manifest.json").read_bytes() == seeded_images.alpine.manifest
        for blob in seeded_images.alpine.blobs:
            data = (target / blob.digest.split(":", 1)[1]).read_bytes()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == blob.digest

        # The totals the database keeps match a recount after real pulls, clear and cleanup.
        assert server.cli("cache", "recount") == {"groups": 1, "corrected": []}
        cleared = server.cli("cache", "clear", account.group)
        assert cleared["manifests_marked"] == 1
        assert cleared["blobs_marked"] == len(seeded_images.alpine.blobs)
        assert server.cli("cache", "recount") == {"groups": 1, "corrected": []}
        cleaned = server.cli("cache", "cleanup")
        assert cleaned["files_deleted"] == len(seeded_images.alpine.blobs)
        assert server.cli("cache", "recount") == {"groups": 1, "corrected": []}
