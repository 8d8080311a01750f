"""Fixtures of the tenancy tests (access matrix, cache reads across groups).

Named `tenancy_*` so that other security test files cannot clash with them.
Each module that asks gets its own Dockyard (in-process, its own data folder)
pointed at the session's reference registry, and its own tenants.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.security.tenancy import (
    InProcessDockyard,
    Tenancy,
    build_tenancy,
    in_process_dockyard,
    security_settings,
)
from tests.support.fixtures import SeededReferenceRegistry


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tenancy_dockyard(
    tmp_path_factory: pytest.TempPathFactory,
    migrated_template: Path,
    reference_registry_session: SeededReferenceRegistry,
) -> AsyncIterator[InProcessDockyard]:
    reference_registry_session.start()  # an earlier test may have stopped it
    folder = tmp_path_factory.mktemp("tenancy-dockyard") / "data"
    settings = security_settings(folder, migrated_template, reference_registry_session.url)
    async with in_process_dockyard(settings) as dockyard:
        yield dockyard


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tenancy_world(tenancy_dockyard: InProcessDockyard) -> Tenancy:
    return await build_tenancy()
