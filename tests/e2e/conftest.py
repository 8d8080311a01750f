"""End-to-end fixtures: a live Dockyard whose upstream is the real reference registry."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.support.dockerd import Dockerd, dockerd_available
from tests.support.dockyard_server import DockyardServer
from tests.support.fixtures import SeededReferenceRegistry


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (make test installs it as root)")
    return path


@pytest.fixture(scope="module")
def dockyard(
    tmp_path_factory: pytest.TempPathFactory, reference_registry_session: SeededReferenceRegistry
) -> Iterator[DockyardServer]:
    server = DockyardServer(tmp_path_factory.mktemp("dockyard"), reference_registry_session.url)
    with server:
        yield server


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    """One Docker engine for the whole session (each start costs seconds); tests give
    each client its own config folder and pull from their own Dockyard."""
    reason = dockerd_available()
    if reason is not None:
        pytest.skip(reason)
    daemon = Dockerd(tmp_path_factory.mktemp("dockerd"))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
