"""Fixtures of the tenancy tests (access matrix, cache and writes across groups, JWTs).

Named `tenancy_*` so that other security test files cannot clash with them.
The tenants are built once per session into a template database (password
hashing is slow on purpose); each module that asks gets its own Dockyard
(in-process, its own data folder and copy of that database) pointed at the
session's reference registry.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from app import db
from app.config import load_settings
from tests.security.tenancy import (
    InProcessDockyard,
    Tenancy,
    build_tenancy,
    in_process_dockyard,
    security_settings,
)
from tests.support.fixtures import SeededReferenceRegistry


@pytest.fixture(scope="session")
def tenancy_template(
    tmp_path_factory: pytest.TempPathFactory, migrated_template: Path
) -> tuple[Path, Tenancy]:
    folder = tmp_path_factory.mktemp("tenancy-template")
    path = folder / "dockyard.sqlite3"
    shutil.copy(migrated_template, path)

    async def build() -> Tenancy:
        await db.init_db(load_settings({}, data_dir=folder, database_url=f"sqlite://{path}"))
        try:
            return await build_tenancy()
        finally:
            await db.close_db()

    return path, asyncio.run(build())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tenancy_dockyard(
    tmp_path_factory: pytest.TempPathFactory,
    tenancy_template: tuple[Path, Tenancy],
    reference_registry_session: SeededReferenceRegistry,
) -> AsyncIterator[InProcessDockyard]:
    reference_registry_session.start()  # an earlier test may have stopped it
    folder = tmp_path_factory.mktemp("tenancy-dockyard") / "data"
    settings = security_settings(folder, tenancy_template[0], reference_registry_session.url)
    async with in_process_dockyard(settings) as dockyard:
        yield dockyard


@pytest.fixture(scope="module")
def tenancy_world(
    tenancy_dockyard: InProcessDockyard, tenancy_template: tuple[Path, Tenancy]
) -> Tenancy:
    """The tenants (the module's database holds them: it is a copy of the template)."""
    return tenancy_template[1]
