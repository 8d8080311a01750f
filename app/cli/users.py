"""`dockyard` commands: Users."""

from __future__ import annotations

import sys

import click

from app.accounts import services as accounts
from app.accounts.models import User, UserState
from app.cli.common import Failure, emit, json_option, main, run, user_data
from app.config import Settings

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
    """Block a user: every password, token and session of theirs stops working at once."""
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
@click.option(
    "--require-change", is_flag=True, help="The user must choose a new one at the next sign-in."
)
@json_option
def user_set_password(
    username: str, password: str | None, password_stdin: bool, require_change: bool, as_json: bool
) -> None:
    """Set a user's password; every web session of theirs ends."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise Failure("give --password or --password-stdin")
    secret = password

    async def work(settings: Settings) -> User:
        user = await accounts.get_user(username)
        return await accounts.set_password(user, secret, require_change=require_change)

    changed = run(work)
    emit(
        as_json,
        user_data(changed),
        f"password of {changed.username} changed; their web sessions were signed out",
    )
