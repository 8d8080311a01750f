"""What every `dockyard` command shares: settings, the database, errors, output."""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any, TypeVar

import click
from tortoise.exceptions import BaseORMException

from app import db
from app.accounts.models import DeployToken, PersonalAccessToken, User
from app.accounts.principal import Principal
from app.config import PRIVATE_UMASK, ConfigError, Settings, load_settings, prepare_data_dir
from app.errors import DockyardError
from app.groups.models import Group

T = TypeVar("T")

# The command line acts as the operator: the policy allows it everything, and every
# command still goes through the same checked services as the pages and the API.
OPERATOR = Principal.operator()


class Failure(click.ClickException):
    """Printed as one `error: ...` line on stderr, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


def settings_or_fail() -> Settings:
    try:
        return prepare_data_dir(load_settings())
    except ConfigError as error:
        raise Failure(str(error)) from None


def run(work: Callable[[Settings], Awaitable[T]]) -> T:
    """Run `work` with the database open, turning domain errors into one line."""
    settings = settings_or_fail()

    async def main() -> T:
        await db.init_db(settings)
        try:
            return await work(settings)
        finally:
            await db.close_db()

    try:
        return asyncio.run(main())
    except DockyardError as error:
        raise Failure(error.message) from None
    except BaseORMException as error:
        raise Failure(db.describe_error(error)) from None
    except OSError as error:
        raise Failure(f"database: {error.strerror or error}") from None


def emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    if as_json:
        click.echo(json.dumps(data, default=_json_default, sort_keys=True))
    else:
        click.echo(text)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return command(*args, **kwargs)

    return wrapper


def parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Failure(f"--expires-at: {value!r} is not a date (YYYY-MM-DD)") from None


def user_data(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "name": user.name,
        "admin": user.is_admin,
        "state": str(user.state),
        "password_change_required": user.password_change_required,
        "created_at": user.created_at,
    }


def group_data(group: Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "full_path": group.full_path,
        "name": group.name,
        "visibility": str(group.visibility),
    }


def token_data(token: PersonalAccessToken | DeployToken) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": token.id,
        "name": token.name,
        "scopes": sorted(token.scope_set),
        "expires_at": token.expires_at,
        "revoked": token.revoked_at is not None,
        "last_used_at": token.last_used_at,
        "created_at": token.created_at,
    }
    if isinstance(token, DeployToken):
        data["username"] = token.username
    return data


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Dockyard: a group-scoped pull-through cache for container images."""
    # Before anything touches the data folder: whatever this process creates
    # there (SQLite's files included, which we do not open ourselves) is 0600.
    os.umask(PRIVATE_UMASK)
