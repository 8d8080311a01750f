"""`dockyard` commands: Serving and migrating."""

from __future__ import annotations

import asyncio
import os

import click
from tortoise.exceptions import BaseORMException

from app import db
from app.cli.common import Failure, emit, json_option, main, run, settings_or_fail
from app.config import Settings, configure_logging
from app.instance.services import ensure_root_user

# --- serve and migrate ---------------------------------------------------------------


def migrate_or_fail(settings: Settings) -> None:
    try:
        asyncio.run(db.migrate(settings))
    except BaseORMException as error:
        raise Failure(f"migration failed: {db.describe_error(error)}") from None
    except OSError as error:
        raise Failure(f"migration failed: {error}") from None


@main.command()
@json_option
def migrate(as_json: bool) -> None:
    """Apply pending database migrations."""
    migrate_or_fail(settings_or_fail())
    emit(as_json, {"migrated": True}, "database is up to date")


@main.command()
@click.option("--host", help="Listen address (DOCKYARD_HOST).")
@click.option("--port", type=int, help="Listen port (DOCKYARD_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Serve Dockyard (migrates the embedded SQLite database first)."""
    import uvicorn

    if host:
        os.environ["DOCKYARD_HOST"] = host
    if port is not None:
        os.environ["DOCKYARD_PORT"] = str(port)
    settings = settings_or_fail()
    configure_logging(settings)
    if settings.is_sqlite and settings.auto_migrate:
        migrate_or_fail(settings)
    first = run(ensure_root_user)
    click.echo(f"Dockyard is serving {settings.external_url}")
    password_file = settings.data_dir / "initial_root_password"
    if first is not None:
        # Printed this once, as GitLab does; the file keeps it until deleted.
        click.echo(f"First start: created the admin user 'root' with password {first.password}")
        click.echo(
            f"It is also in {password_file} (mode 0600): sign in, change it, delete the file."
        )
    elif password_file.exists():
        click.echo(f"The initial password of 'root' is in {password_file}")
    uvicorn.run(
        "app.asgi:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,  # our own access log leaves out query strings and headers
        # httptools enforces no limit on a request's head; ours does (app/http_protocol.py),
        # reading the same setting as h11 does.
        http="app.http_protocol:HeadLimitedHttpToolsProtocol",
        h11_max_incomplete_event_size=settings.max_header_bytes,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
    )
