"""`dockyard db migrate-to`: move an instance's database (SQLite to PostgreSQL)."""

from __future__ import annotations

import asyncio

import click
from tortoise.exceptions import BaseORMException

from app import db
from app.cli.common import Failure, emit, json_option, main
from app.config import ConfigError, load_settings


@main.group("db")
def database() -> None:
    """Move the database to another server."""


@database.command("migrate-to")
@click.option(
    "--database-url",
    "target_url",
    required=True,
    help="The new database (postgres://user:pass@host/db), empty; migrated here first.",
)
@json_option
def migrate_to(target_url: str, as_json: bool) -> None:
    """Copy every row of this instance's database (DOCKYARD_DATABASE_URL, or the SQLite
    file in DOCKYARD_DATA_DIR) into an empty database. Stop the instance first."""
    from app.database_copy import TargetNotEmpty, copy_database

    try:
        source = load_settings()
    except ConfigError as error:
        raise Failure(str(error)) from None
    if not target_url.startswith(("postgres://", "postgresql://", "sqlite://")):
        raise Failure("--database-url: must start with postgres:// (or sqlite://)")
    if target_url == source.database_url:
        raise Failure("--database-url is this instance's own database")
    if source.sqlite_path is not None and not source.sqlite_path.exists():
        raise Failure(f"DOCKYARD_DATA_DIR: no database at {source.sqlite_path}")
    try:
        report = asyncio.run(copy_database(source, target_url))
    except TargetNotEmpty as error:
        raise Failure(f"{error}; copy into a new, empty database") from None
    except BaseORMException as error:
        raise Failure(db.describe_error(error)) from None
    except OSError as error:
        raise Failure(f"database: {error.strerror or error}") from None
    lines = [f"{table}: {count}" for table, count in report.tables.items()]
    emit(
        as_json,
        {"rows": report.rows, "tables": report.tables},
        "\n".join([*lines, f"copied {report.rows} rows; set DOCKYARD_DATABASE_URL to the new one"]),
    )
