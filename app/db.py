"""Tortoise ORM configuration, start-up and migrations."""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate as run_migrations

from app.config import Settings

MODEL_MODULES = [
    "app.accounts.models",
    "app.groups.models",
    "app.instance.models",
    "app.dependency_proxy.models",
]


def tortoise_config(database_url: str) -> dict[str, Any]:
    url = database_url
    if url.startswith("postgresql://"):
        url = "postgres://" + url.removeprefix("postgresql://")
    return {
        "connections": {"default": url},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def init_db(settings: Settings) -> None:
    # The global fallback lets request tasks see the connections that the
    # lifespan task opened (contextvars do not cross those tasks).
    await Tortoise.init(config=tortoise_config(settings.database_url), _enable_global_fallback=True)


async def close_db() -> None:
    await Tortoise.close_connections()


async def migrate(settings: Settings) -> None:
    """Apply every pending migration (idempotent)."""
    await run_migrations(config=tortoise_config(settings.database_url))
    await Tortoise.close_connections()


async def ping() -> None:
    await connections.get("default").execute_query("SELECT 1")


# For `tortoise makemigrations` (see `make migrations`): models only, no data.
TORTOISE_ORM = tortoise_config("sqlite://:memory:")
