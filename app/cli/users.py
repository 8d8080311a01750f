"""`dockyard` commands: Users."""

from __future__ import annotations

import sys

import click

from app.accounts import users
from app.accounts.models import User
from app.cli.common import OPERATOR, Failure, emit, json_option, main, run, user_data
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
        return await users.create_user(OPERATOR, username, email, secret, name=name, is_admin=admin)

    created = run(work)
    emit(as_json, user_data(created), f"created user {created.username}")


@user.command("list")
@json_option
def user_list(as_json: bool) -> None:
    """List users."""
    found = run(lambda settings: users.list_users(OPERATOR))
    lines = [
        "\t".join(
            [item.username, item.email, str(item.state)] + (["admin"] if item.is_admin else [])
        )
        for item in found
    ]
    emit(as_json, {"users": [user_data(item) for item in found]}, "\n".join(lines))


def _set_state(username: str, blocked: bool, as_json: bool) -> None:
    async def work(settings: Settings) -> User:
        if blocked:
            return await users.block_user(OPERATOR, username)
        return await users.unblock_user(OPERATOR, username)

    changed = run(work)
    emit(as_json, user_data(changed), f"{changed.username} is {changed.state}")


@user.command("block")
@click.argument("username")
@json_option
def user_block(username: str, as_json: bool) -> None:
    """Block a user: every password, token and session of theirs stops working at once."""
    _set_state(username, True, as_json)


@user.command("unblock")
@click.argument("username")
@json_option
def user_unblock(username: str, as_json: bool) -> None:
    """Unblock a user."""
    _set_state(username, False, as_json)


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
    """Set a user's password; every web session of theirs ends (and every registry token
    obtained with the old password)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise Failure("give --password or --password-stdin")
    secret = password

    async def work(settings: Settings) -> User:
        return await users.reset_password(OPERATOR, username, secret, require_change=require_change)

    changed = run(work)
    emit(
        as_json,
        user_data(changed),
        f"password of {changed.username} changed; their web sessions were signed out",
    )
