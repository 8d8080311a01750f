"""The data folder is the service's alone (issue 8, point 6): after a real pull through a
live server and after CLI commands, every folder in it is 0700 and every file 0600:
database, WAL and shared memory, secret key, blobs, initial root password."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.conftest import require
from tests.support.dockyard_server import DOCKYARD, DockyardServer
from tests.support.fixtures import SeededReferenceRegistry

pytestmark = pytest.mark.e2e


@contextmanager
def permissive_umask() -> Iterator[None]:
    """Processes started in here inherit umask 0: private modes must be Dockyard's doing."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def modes(data_dir: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(data_dir.stat().st_mode)}
    for path in data_dir.rglob("*"):
        found[str(path.relative_to(data_dir))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def allowed_modes(data_dir: Path, name: str) -> tuple[int, ...]:
    if (data_dir / name).is_dir():
        return (0o700,)
    if name.startswith("blobs/"):
        # A downloaded blob is marked committed by turning read-only (downloads/spool.py).
        return (0o600, 0o400)
    return (0o600,)


def assert_private(data_dir: Path) -> None:
    wrong = {
        name: oct(mode)
        for name, mode in modes(data_dir).items()
        if mode not in allowed_modes(data_dir, name)
    }
    assert wrong == {}


@pytest.fixture(scope="module")
def pulled(
    tmp_path_factory: pytest.TempPathFactory, reference_registry_session: SeededReferenceRegistry
) -> Iterator[DockyardServer]:
    """A live Dockyard, started under umask 0, after a skopeo pull of alpine:3.19."""
    workdir = tmp_path_factory.mktemp("modes")
    server = DockyardServer(workdir, reference_registry_session.url)
    with permissive_umask():
        server.start()
    try:
        with permissive_umask():
            account = server.provision("olivia", "acme")
        result = subprocess.run(
            [
                require("skopeo"),
                "copy",
                "--src-tls-verify=false",
                "--src-creds",
                f"olivia:{account.token}",
                f"docker://{server.prefix('acme')}/alpine:3.19",
                f"dir:{workdir / 'pulled'}",
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode()
        yield server
    finally:
        server.stop()


def test_after_a_pull_every_file_in_the_data_folder_is_private(pulled: DockyardServer) -> None:
    found = modes(pulled.data_dir)
    expected = {
        "dockyard.sqlite3",
        "dockyard.sqlite3-wal",
        "dockyard.sqlite3-shm",
        "secret_key",
        "initial_root_password",
    }
    assert expected <= set(found)
    assert [name for name in found if name.startswith("blobs/sha256/") and name.count("/") == 3]
    assert_private(pulled.data_dir)


def test_cli_commands_leave_the_data_folder_private(pulled: DockyardServer) -> None:
    with permissive_umask():
        pulled.cli("user", "create", "gus", "--email", "gus@example.com", "--password", "a" * 16)
        pulled.cli("cache", "clear", "acme")
        pulled.cli("cache", "cleanup")
    assert_private(pulled.data_dir)


def test_a_data_folder_made_by_the_cli_is_private(tmp_path: Path) -> None:
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("DOCKYARD_")},
        "DOCKYARD_DATA_DIR": str(tmp_path / "data"),
    }
    with permissive_umask():
        subprocess.run([DOCKYARD, "migrate"], env=env, check=True, capture_output=True)
    assert_private(tmp_path / "data")


def test_a_world_readable_data_folder_of_an_older_version_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("DOCKYARD_")},
        "DOCKYARD_DATA_DIR": str(data_dir),
    }
    subprocess.run([DOCKYARD, "migrate"], env=env, check=True, capture_output=True)
    for path in (data_dir, *data_dir.iterdir()):  # as older versions left it
        path.chmod(0o755 if path.is_dir() else 0o644)
    subprocess.run([DOCKYARD, "user", "list"], env=env, check=True, capture_output=True)
    assert_private(data_dir)
