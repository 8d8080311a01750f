"""Fixtures shared by every level of tests.

`settings` gives a fresh data folder; `database` opens a SQLite file copied
from a template that the real migrations built once per session (so every
test runs on the schema that `dockyard migrate` creates); `client` drives the
whole ASGI app in-process with its lifespan.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from app import clock, db
from app.asgi import create_app
from app.config import Settings, load_settings, prepare_data_dir

pytest_plugins = ["tests.support.fixtures"]

TEST_SECRET = "test-secret-key-" + "x" * 40


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("template")
    path = folder / "dockyard.sqlite3"
    asyncio.run(db.migrate(load_settings({}, data_dir=folder, database_url=f"sqlite://{path}")))
    return path


@pytest.fixture
def settings(tmp_path: Path, migrated_template: Path) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(migrated_template, data_dir / "dockyard.sqlite3")
    return prepare_data_dir(
        load_settings(
            {},
            data_dir=data_dir,
            secret_key=TEST_SECRET,
            external_url="http://dockyard.test",
            # The pre-warm worker would poll beside the requests tests measure; tests
            # run warm jobs themselves (tests/e2e run the worker for real).
            warm_poll_seconds=3600.0,
        )
    )


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Settings]:
    await db.init_db(settings)
    try:
        yield settings
    finally:
        await db.close_db()


@pytest.fixture
def app(settings: Settings) -> Starlette:
    return create_app(settings)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app in-process, lifespan included (so the database is open)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dockyard.test") as http:
            yield http


@pytest.fixture(autouse=True)
def real_clock() -> Iterator[None]:
    yield
    clock.set_clock(None)
