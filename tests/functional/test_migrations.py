"""Every migration applied to an empty database gives exactly the models' schema."""

from pathlib import Path

from tortoise.migrations.autodetector import MigrationAutodetector

from app import db
from app.config import load_settings


async def test_migrations_match_the_models(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite3"
    settings = load_settings({}, data_dir=tmp_path, database_url=f"sqlite://{path}")
    await db.migrate(settings)
    await db.migrate(settings)  # applying again is a no-op

    config = db.tortoise_config(settings.database_url)
    await db.init_db(settings)
    try:
        from tortoise import Tortoise

        detector = MigrationAutodetector(Tortoise.apps, config["apps"])
        pending = await detector.changes()
        assert pending == [], [writer.name for writer in pending]
        tables = {
            row["name"]
            for row in (
                await db.connections.get("default").execute_query_dict(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            )
        }
        for model in Tortoise.apps["models"].values():
            assert model._meta.db_table in tables
    finally:
        await db.close_db()
