"""Readiness follows the shared servers an instance needs: it turns 503 (saying which
check failed) while PostgreSQL or the bucket is down, and 200 again when they are back.
Liveness stays 200 throughout: restarting the instance would not help."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.dockyard_server import DockyardServer, s3_settings
from tests.support.fixtures import S3_BUCKET
from tests.support.postgres import PostgresServer, postgres_bin, throwaway_postgres
from tests.support.seaweedfs import WEED, SeaweedS3, create_bucket

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed"),
    pytest.mark.skipif(WEED is None, reason="weed is not installed"),
]


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A cluster of this test's own: the test stops and starts it."""
    with throwaway_postgres() as server:
        yield server


@pytest.fixture
def own_seaweed(tmp_path: Path) -> Iterator[SeaweedS3]:
    server = SeaweedS3(tmp_path / "seaweedfs")
    server.start()
    try:
        create_bucket(server, S3_BUCKET)
        yield server
    finally:
        server.stop()


def readiness_until(server: DockyardServer, status: int, timeout: float = 30) -> dict[str, Any]:
    """Poll readiness until it answers `status` (the bucket check is cached for 5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(f"{server.url}/-/readiness", timeout=10)
        if answer.status_code == status or time.monotonic() > deadline:
            assert answer.status_code == status, answer.text
            body: dict[str, Any] = answer.json()
            return body
        time.sleep(0.5)


def live(server: DockyardServer) -> bool:
    return httpx.get(f"{server.url}/-/liveness", timeout=10).status_code == 200


def test_readiness_turns_false_while_postgres_or_the_bucket_is_down(
    own_postgres: PostgresServer, own_seaweed: SeaweedS3, tmp_path: Path
) -> None:
    url = own_postgres.create_database("readiness")
    server = DockyardServer(
        tmp_path / "dockyard",
        "http://127.0.0.1:9",
        env={"DOCKYARD_DATABASE_URL": url, **s3_settings(own_seaweed, "readiness/")},
    )
    server.cli("migrate")
    with server:
        assert readiness_until(server, 200)["checks"] == {
            "database": "ok",
            "bucket": "ok",
            "data_dir": "ok",
        }

        own_postgres.stop()
        down = readiness_until(server, 503)
        assert down["status"] == "unavailable"
        assert down["failed"] == ["database"]
        assert down["checks"]["database"].startswith("unreachable")
        assert down["checks"]["bucket"] == "ok"
        assert live(server)
        own_postgres.start_server()
        assert readiness_until(server, 200)["checks"]["database"] == "ok"

        own_seaweed.stop()
        down = readiness_until(server, 503)
        assert down["failed"] == ["bucket"]
        assert down["checks"]["bucket"].startswith("unreachable")
        assert down["checks"]["database"] == "ok"
        assert live(server)
        own_seaweed.start()
        assert readiness_until(server, 200)["checks"]["bucket"] == "ok"
