"""Every connection the server and the CLI open uses WAL and a busy timeout; a database
another process keeps write-locked is reported as busy (a CLI line, a 503), not as a
missing migration or a 500."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tortoise import connections

from app import db
from app.asgi import create_app
from app.cli.common import run
from app.config import Settings, load_settings, prepare_data_dir
from tests.conftest import TEST_SECRET
from tests.functional.web.conftest import PASSWORD, csrf_of, make_user

DOCKYARD = shutil.which("dockyard", path=str(Path(sys.executable).parent)) or "dockyard"


async def pragmas() -> tuple[str, int]:
    connection = connections.get("default")
    _, [journal] = await connection.execute_query("PRAGMA journal_mode")
    _, [timeout] = await connection.execute_query("PRAGMA busy_timeout")
    return str(journal[0]), int(timeout[0])


async def test_the_servers_connection_uses_wal_and_the_busy_timeout(database: Settings) -> None:
    assert await pragmas() == ("wal", db.SQLITE_BUSY_TIMEOUT_MS)


def test_the_clis_connection_uses_wal_and_the_busy_timeout(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKYARD_DATA_DIR", str(settings.data_dir))

    async def work(cli_settings: Settings) -> tuple[str, int]:
        return await pragmas()

    assert run(work) == ("wal", db.SQLITE_BUSY_TIMEOUT_MS)


@pytest.fixture
def write_locked(settings: Settings) -> Iterator[Path]:
    """The database with another process's write transaction open on it."""
    path = settings.data_dir / "dockyard.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield path
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def cli(path: Path, *args: str, **env: Any) -> subprocess.CompletedProcess[str]:
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("DOCKYARD_")},
        "DOCKYARD_DATA_DIR": str(path.parent),
        **env,
    }
    return subprocess.run(
        [DOCKYARD, *args], env=environment, capture_output=True, text=True, timeout=60
    )


def test_a_write_locked_database_is_reported_as_busy(write_locked: Path) -> None:
    # A short wait through the URL, so the test does not sit out the 10 s default.
    result = cli(
        write_locked,
        "group",
        "create",
        "acme",
        DOCKYARD_DATABASE_URL=f"sqlite://{write_locked}?busy_timeout=200",
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: the database is busy (another process holds a write lock too long); try again"
    )


def test_reads_go_on_while_another_process_writes(write_locked: Path) -> None:
    result = cli(write_locked, "group", "list", "--json")
    assert result.returncode == 0, result.stderr


async def test_a_request_that_meets_a_write_lock_gets_503_busy_not_500(
    tmp_path: Path, migrated_template: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = data_dir / "dockyard.sqlite3"
    shutil.copy(migrated_template, database)
    settings = prepare_data_dir(
        load_settings(
            {},
            data_dir=data_dir,
            secret_key=TEST_SECRET,
            database_url=f"sqlite://{database}?busy_timeout=100",
        )
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await make_user("olivia")
        # Starlette re-raises after answering; the client should see the answer.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://dockyard.test") as http:
            form = await http.get("/users/sign_in")
            holder = sqlite3.connect(database, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:  # signing in records the sign-in: a write
                response = await http.post(
                    "/users/sign_in",
                    data={
                        "authenticity_token": csrf_of(form.text),
                        "login": "olivia",
                        "password": PASSWORD,
                    },
                )
            finally:
                holder.execute("ROLLBACK")
                holder.close()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {"error": db.BUSY_MESSAGE}
