"""Migration 0008 moves each group's Docker Hub credentials to its own upstream list,
on SQLite and on PostgreSQL, and the moved secrets still decrypt."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate as run_migrations

from app import db
from app.config import load_settings
from app.dependency_proxy import credentials
from app.dependency_proxy.models import Upstream
from app.dependency_proxy.upstreams import upstreams_for
from app.groups import records as groups
from tests.conftest import TEST_SECRET
from tests.support.postgres import PostgresServer

MIGRATION = importlib.import_module("migrations.0008_group_upstreams")
BEFORE = MIGRATION.Migration.dependencies[0][1]
STAMP = "'2026-01-01 00:00:00+00:00'"


async def _seed_old_schema(url: str) -> None:
    config = db.tortoise_config(url)
    await run_migrations(config=config, target=f"models.{BEFORE}")
    await Tortoise.init(config=config)
    try:
        client = connections.get("default")
        identity = credentials.encrypt(TEST_SECRET, "hubuser")
        secret = credentials.encrypt(TEST_SECRET, "hub-secret")
        for number, path in ((1, "with-creds"), (2, "without"), (3, "with-creds/sub")):
            parent = "1" if "/" in path else "NULL"
            await client.execute_script(
                "INSERT INTO groups (id, parent_id, path, full_path, full_path_key, name, "
                f"description, visibility, created_at, updated_at) VALUES ({number}, {parent}, "
                f"'{path.rsplit('/', 1)[-1]}', '{path}', '{path}', '{path}', '', 'private', "
                f"{STAMP}, {STAMP})"
            )
        rows = ((1, f"'{identity}'", f"'{secret}'"), (2, "NULL", "NULL"))
        for group_id, sealed_identity, sealed_secret in rows:
            await client.execute_script(
                "INSERT INTO dependency_proxy_group_settings (group_id, enabled, "
                "identity_encrypted, secret_encrypted, revalidation_interval, created_at, "
                f"updated_at) VALUES ({group_id}, TRUE, {sealed_identity}, {sealed_secret}, 0, "
                f"{STAMP}, {STAMP})"
            )
    finally:
        await Tortoise.close_connections()


async def _check_moved(url: str, data_dir: Path) -> None:
    settings = load_settings({}, data_dir=data_dir, database_url=url, secret_key=TEST_SECRET)
    await db.migrate(settings)
    await db.init_db(settings)
    try:
        moved = await Upstream.all()
        assert [(row.group_id, row.name, row.url, row.position) for row in moved] == [  # type: ignore[attr-defined]
            (1, "docker-hub", None, 1)
        ]
        hub = (await upstreams_for(await groups.get_group("with-creds"), settings, None))[0]
        assert hub.docker_hub and hub.credentials is not None
        assert (hub.credentials.username, hub.credentials.password) == ("hubuser", "hub-secret")
        # The subgroup now inherits them with the list; the other group has the default.
        sub = await upstreams_for(await groups.get_group("with-creds/sub"), settings, None)
        assert sub[0].credentials is not None and sub[0].owner_group_id == 1
        plain = await upstreams_for(await groups.get_group("without"), settings, None)
        assert plain[0].id is None and plain[0].credentials is None
    finally:
        await db.close_db()


async def test_credentials_move_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'old.sqlite3'}"
    await _seed_old_schema(url)
    await _check_moved(url, tmp_path)


@pytest.mark.e2e
async def test_credentials_move_on_postgres(tmp_path: Path, postgres: PostgresServer) -> None:
    url = postgres.create_database("upstreams_migration")
    await _seed_old_schema(url)
    await _check_moved(url, tmp_path)
