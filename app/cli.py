"""The `dockyard` command (DESIGN §10: names, syntax and --json output are fixed).

Every command exits non-zero with one clear `error: ...` line on bad input,
never a traceback; `--json` prints a single JSON object on stdout.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any, TypeVar

import click
from tortoise.exceptions import BaseORMException

from app import db
from app.accounts import services as accounts
from app.accounts.models import DeployToken, PersonalAccessToken, User, UserState
from app.accounts.principal import Principal
from app.config import ConfigError, Settings, configure_logging, load_settings, prepare_data_dir
from app.errors import DockyardError
from app.groups import services as groups
from app.groups.models import Group
from app.instance.services import ensure_root_user

T = TypeVar("T")


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
        raise Failure(f"database: {error} (did you run `dockyard migrate`?)") from None
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


# --- serve and migrate ---------------------------------------------------------------


@main.command()
def migrate() -> None:
    """Apply pending database migrations."""
    settings = settings_or_fail()
    try:
        asyncio.run(db.migrate(settings))
    except (BaseORMException, OSError) as error:
        raise Failure(f"migration failed: {error}") from None
    click.echo("database is up to date")


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
        try:
            asyncio.run(db.migrate(settings))
        except (BaseORMException, OSError) as error:
            raise Failure(f"migration failed: {error}") from None
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
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
    )


# --- users ------------------------------------------------------------------------------


@main.group()
def user() -> None:
    """Create and manage users."""


@user.command("create")
@click.argument("username")
@click.option("--email", required=True)
@click.option("--name", default="")
@click.option("--password")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--admin", is_flag=True)
@json_option
def user_create(
    username: str,
    email: str,
    name: str,
    password: str | None,
    password_stdin: bool,
    admin: bool,
    as_json: bool,
) -> None:
    """Create a user."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise Failure("give --password or --password-stdin")
    secret = password

    async def work(settings: Settings) -> User:
        return await accounts.create_user(username, email, secret, name=name, is_admin=admin)

    created = run(work)
    emit(as_json, user_data(created), f"created user {created.username}")


@user.command("list")
@json_option
def user_list(as_json: bool) -> None:
    """List users."""
    users = run(lambda settings: accounts.list_users())
    lines = [
        "\t".join(
            [item.username, item.email, str(item.state)] + (["admin"] if item.is_admin else [])
        )
        for item in users
    ]
    emit(as_json, {"users": [user_data(item) for item in users]}, "\n".join(lines))


def _set_state(username: str, state: UserState, as_json: bool) -> None:
    async def work(settings: Settings) -> User:
        return await accounts.set_state(await accounts.get_user(username), state)

    changed = run(work)
    emit(as_json, user_data(changed), f"{changed.username} is {state}")


@user.command("block")
@click.argument("username")
@json_option
def user_block(username: str, as_json: bool) -> None:
    """Block a user: every password and token of theirs stops working at once."""
    _set_state(username, UserState.BLOCKED, as_json)


@user.command("unblock")
@click.argument("username")
@json_option
def user_unblock(username: str, as_json: bool) -> None:
    """Unblock a user."""
    _set_state(username, UserState.ACTIVE, as_json)


@user.command("set-password")
@click.argument("username")
@click.option("--password")
@click.option("--password-stdin", is_flag=True)
@json_option
def user_set_password(
    username: str, password: str | None, password_stdin: bool, as_json: bool
) -> None:
    """Set a user's password."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise Failure("give --password or --password-stdin")
    secret = password

    async def work(settings: Settings) -> User:
        return await accounts.set_password(await accounts.get_user(username), secret)

    changed = run(work)
    emit(as_json, user_data(changed), f"password of {changed.username} changed")


# --- groups and members -------------------------------------------------------------------


@main.group()
def group() -> None:
    """Create and list groups."""


@group.command("create")
@click.argument("full_path")
@click.option("--name")
@click.option("--description", default="")
@json_option
def group_create(full_path: str, name: str | None, description: str, as_json: bool) -> None:
    """Create a group; FULL_PATH may name a subgroup (acme/platform)."""

    async def work(settings: Settings) -> Group:
        return await groups.create_group(full_path, name=name, description=description)

    created = run(work)
    emit(as_json, group_data(created), f"created group {created.full_path}")


@group.command("list")
@click.option("--search")
@json_option
def group_list(search: str | None, as_json: bool) -> None:
    """List groups."""
    found = run(lambda settings: groups.list_groups(search))
    lines = [f"{item.full_path}\t{item.name}" for item in found]
    emit(as_json, {"groups": [group_data(item) for item in found]}, "\n".join(lines))


@main.group()
def member() -> None:
    """Manage group memberships."""


@member.command("add")
@click.argument("group_path")
@click.argument("username")
@click.option("--role", required=True, help="guest|reporter|developer|maintainer|owner")
@json_option
def member_add(group_path: str, username: str, role: str, as_json: bool) -> None:
    """Add a member (or change their role)."""
    try:
        level = groups.parse_role(role)
    except DockyardError as error:
        raise Failure(f"--role: {error.message}") from None

    async def work(settings: Settings) -> tuple[Group, User]:
        found_group = await groups.get_group(group_path)
        found_user = await accounts.get_user(username)
        await groups.add_member(found_group, found_user, level)
        return found_group, found_user

    found_group, found_user = run(work)
    data = {"group": found_group.full_path, "username": found_user.username, "role": level.label}
    emit(as_json, data, f"{found_user.username} is {level.label} of {found_group.full_path}")


@member.command("remove")
@click.argument("group_path")
@click.argument("username")
@json_option
def member_remove(group_path: str, username: str, as_json: bool) -> None:
    """Remove a direct member."""

    async def work(settings: Settings) -> None:
        found_group = await groups.get_group(group_path)
        await groups.remove_member(found_group, await accounts.get_user(username))

    run(work)
    emit(as_json, {"group": group_path, "username": username, "removed": True}, "removed")


@member.command("list")
@click.argument("group_path")
@json_option
def member_list(group_path: str, as_json: bool) -> None:
    """List members, inherited ones included."""

    async def work(settings: Settings) -> list[groups.MemberView]:
        return await groups.list_members(await groups.get_group(group_path))

    members = run(work)
    rows = [
        {
            "username": item.user.username,
            "role": item.access_level.label,
            "access_level": int(item.access_level),
            "inherited_from": item.source_group.full_path if item.inherited else None,
        }
        for item in members
    ]
    lines = [
        f"{row['username']}\t{row['role']}"
        + (f"\t(inherited from {row['inherited_from']})" if row["inherited_from"] else "")
        for row in rows
    ]
    emit(as_json, {"group": group_path, "members": rows}, "\n".join(lines))


# --- tokens --------------------------------------------------------------------------------


@main.group()
def token() -> None:
    """Personal access tokens."""


@token.command("create")
@click.argument("username")
@click.option("--name", required=True)
@click.option("--scopes", required=True, help="api,read_api,read_registry,write_registry")
@click.option("--expires-at", help="YYYY-MM-DD")
@json_option
def token_create(
    username: str, name: str, scopes: str, expires_at: str | None, as_json: bool
) -> None:
    """Create a personal access token; the secret is printed once."""
    expiry = parse_date(expires_at)

    async def work(settings: Settings) -> accounts.CreatedToken:
        owner = await accounts.get_user(username)
        return await accounts.create_personal_access_token(owner, name, scopes, expiry)

    created = run(work)
    data = {**token_data(created.personal_access_token), "token": created.secret}
    emit(as_json, data, created.secret)


@token.command("revoke")
@click.argument("username")
@click.argument("name")
@json_option
def token_revoke(username: str, name: str, as_json: bool) -> None:
    """Revoke a personal access token by name."""

    async def work(settings: Settings) -> PersonalAccessToken:
        return await accounts.revoke_personal_access_token(await accounts.get_user(username), name)

    revoked = run(work)
    emit(as_json, token_data(revoked), f"revoked token {revoked.name}")


@token.command("list")
@click.argument("username")
@json_option
def token_list(username: str, as_json: bool) -> None:
    """List a user's personal access tokens (never their secrets)."""

    async def work(settings: Settings) -> list[PersonalAccessToken]:
        return await accounts.list_personal_access_tokens(await accounts.get_user(username))

    tokens = run(work)
    lines = [_token_line(item) for item in tokens]
    emit(as_json, {"tokens": [token_data(item) for item in tokens]}, "\n".join(lines))


def _token_line(item: PersonalAccessToken | DeployToken) -> str:
    state = "revoked" if item.revoked_at else f"expires {item.expires_at or 'never'}"
    return f"{item.name}\t{item.scopes}\t{state}"


@main.group("deploy-token")
def deploy_token() -> None:
    """Group deploy tokens."""


@deploy_token.command("create")
@click.argument("group_path")
@click.option("--name", required=True)
@click.option("--scopes", required=True, help="read_registry,write_registry")
@click.option("--expires-at", help="YYYY-MM-DD")
@click.option("--username", help="Defaults to dockyard+deploy-token-<id>.")
@json_option
def deploy_token_create(
    group_path: str,
    name: str,
    scopes: str,
    expires_at: str | None,
    username: str | None,
    as_json: bool,
) -> None:
    """Create a deploy token for a group and its subgroups; the secret is printed once."""
    expiry = parse_date(expires_at)

    async def work(settings: Settings) -> accounts.CreatedDeployToken:
        found_group = await groups.get_group(group_path)
        return await accounts.create_deploy_token(found_group, name, scopes, expiry, username)

    created = run(work)
    data = {**token_data(created.deploy_token), "token": created.secret}
    emit(as_json, data, f"username: {created.username}\ntoken: {created.secret}")


@deploy_token.command("revoke")
@click.argument("group_path")
@click.argument("name")
@json_option
def deploy_token_revoke(group_path: str, name: str, as_json: bool) -> None:
    """Revoke a deploy token by name."""

    async def work(settings: Settings) -> DeployToken:
        return await accounts.revoke_deploy_token(await groups.get_group(group_path), name)

    revoked = run(work)
    emit(as_json, token_data(revoked), f"revoked deploy token {revoked.name}")


@deploy_token.command("list")
@click.argument("group_path")
@json_option
def deploy_token_list(group_path: str, as_json: bool) -> None:
    """List a group's deploy tokens (never their secrets)."""

    async def work(settings: Settings) -> list[DeployToken]:
        return await accounts.list_deploy_tokens(await groups.get_group(group_path))

    tokens = run(work)
    lines = [f"{item.username}\t{_token_line(item)}" for item in tokens]
    emit(as_json, {"deploy_tokens": [token_data(item) for item in tokens]}, "\n".join(lines))


# --- cache and GraphQL schema ----------------------------------------------------------------


def operator_principal() -> Principal:
    """The CLI is the operator: it acts as an (unsaved) instance admin."""
    return Principal(user=User(username="dockyard-cli", is_admin=True, state=UserState.ACTIVE))


@main.group()
def cache() -> None:
    """Clear a group's cache or run the cleanup now."""


@cache.command("clear")
@click.argument("group_path")
@json_option
def cache_clear(group_path: str, as_json: bool) -> None:
    """Schedule every cached manifest and blob of GROUP_PATH for deletion."""
    from app.dependency_proxy.services.clear_cache import ClearCacheResult, clear_cache

    async def work(settings: Settings) -> ClearCacheResult:
        return await clear_cache(operator_principal(), await groups.get_group(group_path))

    result = run(work)
    data = {
        "group": group_path,
        "manifests_marked": result.manifests_marked,
        "blobs_marked": result.blobs_marked,
    }
    text = (
        f"scheduled {result.manifests_marked} manifests and {result.blobs_marked} blobs "
        f"of {group_path} for deletion (run `dockyard cache cleanup` to delete them now)"
    )
    emit(as_json, data, text)


@cache.command("cleanup")
@json_option
def cache_cleanup(as_json: bool) -> None:
    """Run the TTL expiry and the deletion passes now."""
    from dataclasses import asdict

    from app.dependency_proxy.cleanup import CleanupResult, run_cleanup_once
    from app.runtime import Runtime

    async def work(settings: Settings) -> CleanupResult:
        runtime = Runtime.build(settings)
        try:
            return await run_cleanup_once(runtime)
        finally:
            await runtime.close()

    result = run(work)
    text = (
        f"expired {result.manifests_expired} manifests and {result.blobs_expired} blobs; "
        f"deleted {result.manifests_deleted} manifests, {result.blobs_deleted} blobs "
        f"and {result.files_deleted} files; {result.failed} failed"
    )
    emit(as_json, asdict(result), text)


@main.command("graphql-schema")
def graphql_schema() -> None:
    """Print the GraphQL schema (SDL), as committed in graphql/schema.graphql."""
    from app.gql.schema import sdl

    click.echo(sdl(), nl=False)
