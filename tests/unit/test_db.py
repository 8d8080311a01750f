"""Connection settings and error messages of the database layer (app/db.py)."""

from __future__ import annotations

import sqlite3

from tortoise.exceptions import OperationalError

from app import db


def sqlite_credentials(url: str) -> dict[str, object]:
    connection = db.tortoise_config(url)["connections"]["default"]
    assert isinstance(connection, dict)
    credentials: dict[str, object] = connection["credentials"]
    return credentials


def test_every_sqlite_connection_gets_wal_and_a_busy_timeout() -> None:
    credentials = sqlite_credentials("sqlite:///srv/dockyard/dockyard.sqlite3")
    assert credentials["file_path"] == "/srv/dockyard/dockyard.sqlite3"
    assert credentials["journal_mode"] == "WAL"
    assert credentials["busy_timeout"] == db.SQLITE_BUSY_TIMEOUT_MS
    # Tortoise runs them as PRAGMAs in order: the timeout must come before the WAL switch.
    names = list(credentials)
    assert names.index("busy_timeout") < names.index("journal_mode")


def test_settings_in_the_database_url_win() -> None:
    credentials = sqlite_credentials("sqlite:///tmp/d.sqlite3?busy_timeout=250")
    assert credentials["busy_timeout"] == "250"


def test_postgres_urls_pass_through() -> None:
    config = db.tortoise_config("postgresql://dockyard:secret@db/dockyard")
    assert config["connections"]["default"] == "postgres://dockyard:secret@db/dockyard"


def test_a_locked_database_is_reported_as_busy_not_as_missing_migrations() -> None:
    error = OperationalError(sqlite3.OperationalError("database is locked"))
    message = db.describe_error(error)
    assert message == db.BUSY_MESSAGE
    assert "migrate" not in message


def test_a_missing_table_suggests_the_migration() -> None:
    sqlite = db.describe_error(OperationalError("no such table: users"))
    postgres = db.describe_error(OperationalError('relation "users" does not exist'))
    assert "dockyard migrate" in sqlite
    assert "dockyard migrate" in postgres


def test_other_database_errors_are_shown_as_they_are() -> None:
    message = db.describe_error(OperationalError("disk I/O error"))
    assert message == "database: disk I/O error"
