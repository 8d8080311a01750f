"""The request limits' settings and the data folder's modes (app/config.py)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import ConfigError, load_settings, prepare_data_dir


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 0: what we create must be private because we ask for it, not by luck."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_request_limits_default_to_64_kib_of_headers_and_1_mib_of_body() -> None:
    settings = load_settings({})
    assert settings.max_header_bytes == 64 * 1024
    assert settings.max_body_bytes == 1024 * 1024


def test_request_limits_come_from_the_environment() -> None:
    settings = load_settings(
        {"DOCKYARD_MAX_HEADER_BYTES": "32768", "DOCKYARD_MAX_BODY_BYTES": "2097152"}
    )
    assert (settings.max_header_bytes, settings.max_body_bytes) == (32768, 2097152)


@pytest.mark.parametrize("name", ["DOCKYARD_MAX_HEADER_BYTES", "DOCKYARD_MAX_BODY_BYTES"])
@pytest.mark.parametrize("value", ["0", "-1", "lots"])
def test_a_limit_must_be_a_positive_number(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_a_new_data_folder_is_0700_with_a_0600_database(
    tmp_path: Path, permissive_umask: None
) -> None:
    settings = prepare_data_dir(load_settings({}, data_dir=tmp_path / "data"))
    assert mode(settings.data_dir) == 0o700
    assert settings.sqlite_path == settings.data_dir / "dockyard.sqlite3"
    assert mode(settings.data_dir / "dockyard.sqlite3") == 0o600
    assert mode(settings.data_dir / "secret_key") == 0o600


def test_an_existing_world_readable_data_folder_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "blobs").mkdir(parents=True)
    data_dir.chmod(0o755)
    (data_dir / "blobs").chmod(0o755)
    for name in ("dockyard.sqlite3", "dockyard.sqlite3-wal", "initial_root_password"):
        (data_dir / name).write_text("x")
        (data_dir / name).chmod(0o644)
    prepare_data_dir(load_settings({}, data_dir=data_dir))
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "blobs") == 0o700
    for name in ("dockyard.sqlite3", "dockyard.sqlite3-wal", "initial_root_password"):
        assert mode(data_dir / name) == 0o600, name


def test_postgres_creates_no_sqlite_file(tmp_path: Path) -> None:
    settings = prepare_data_dir(
        load_settings({}, data_dir=tmp_path, database_url="postgres://u:p@db/dockyard")
    )
    assert settings.sqlite_path is None
    assert not (tmp_path / "dockyard.sqlite3").exists()
