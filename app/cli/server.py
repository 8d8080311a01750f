"""`dockyard` commands: Serving and migrating."""

from __future__ import annotations

import asyncio
import errno
import os
import socket

import click
from tortoise.exceptions import BaseORMException

from app import db
from app.cli.common import Failure, emit, json_option, main, run, settings_or_fail
from app.config import ConfigError, Settings, load_settings
from app.instance.services import ensure_root_user
from app.logging import configure_logging, logging_config

# --- serve and migrate ---------------------------------------------------------------

WORKER_HEALTHCHECK_SECONDS = 60


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


def check_listen_address(host: str, port: int) -> None:
    """Fail with one line before migrating or printing anything when the address is
    taken: uvicorn would only fail after "Application startup complete"."""
    try:
        addresses = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as error:
        raise Failure(f"DOCKYARD_HOST: cannot listen on {host!r}: {error.strerror}") from None
    bound = 0
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            # As uvicorn binds: SO_REUSEADDR, so a closed connection in TIME_WAIT is no obstacle.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
                bound += 1
            except OSError as error:
                if error.errno == errno.EADDRNOTAVAIL:
                    continue  # that family is off here; asyncio skips it the same way
                raise Failure(_bind_failure(host, port, error)) from None
    if not bound:
        raise Failure(f"DOCKYARD_HOST: {host} is not an address of this machine")


def _bind_failure(host: str, port: int, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return f"port {port} is in use on {host} — another Dockyard? Set DOCKYARD_PORT (or --port)"
    if error.errno == errno.EACCES:
        return f"cannot listen on {host}:{port}: permission denied (ports below 1024 need root)"
    return f"cannot listen on {host}:{port}: {error.strerror}"


def listen_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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
    try:
        wanted = load_settings()
    except ConfigError as error:
        raise Failure(str(error)) from None
    # Before anything is created, migrated or printed: a second `make run` changes nothing.
    check_listen_address(wanted.host, wanted.port)
    settings = settings_or_fail()
    configure_logging(settings)
    if settings.is_sqlite and settings.auto_migrate:
        migrate_or_fail(settings)
    first = run(ensure_root_user)
    _announce(settings, first.password if first is not None else None)
    uvicorn.run(
        "app.asgi:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        # uvicorn kills a worker that does not answer its supervisor's ping within
        # this many seconds (5 by default): on a busy machine a worker still
        # importing the app was killed and restarted again and again.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        log_level=settings.log_level,
        log_config=logging_config(settings),  # workers apply it too
        access_log=False,  # our own access log leaves out query strings and headers
        # httptools enforces no limit on a request's head; ours does (app/http_protocol.py),
        # reading the same setting as h11 does.
        http="app.http_protocol:HeadLimitedHttpToolsProtocol",
        h11_max_incomplete_event_size=settings.max_header_bytes,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
    )


def _announce(settings: Settings, first_password: str | None) -> None:
    """Where Dockyard listens, and the URL clients are sent to: not always the same."""
    click.echo(f"Dockyard listens on {listen_address(settings.host, settings.port)}")
    if settings.external_url_is_default:
        click.echo(
            f"External URL: {settings.external_url} (clients log in and pull there; "
            "set DOCKYARD_EXTERNAL_URL when they reach Dockyard by another address)"
        )
    else:
        click.echo(f"External URL: {settings.external_url} (DOCKYARD_EXTERNAL_URL)")
    password_file = settings.data_dir / "initial_root_password"
    if first_password is not None:
        # Printed this once, as GitLab does; the file keeps it until deleted.
        click.echo(f"First start: created the admin user 'root' with password {first_password}")
        click.echo(
            f"It is also in {password_file} (mode 0600): sign in at "
            f"{settings.external_url}/users/sign_in, choose a new password, delete the file."
        )
    elif password_file.exists():
        click.echo(f"The initial password of 'root' is in {password_file}")
