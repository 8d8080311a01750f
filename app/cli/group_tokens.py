"""`dockyard` commands: Group access tokens (GitLab 16+)."""

from __future__ import annotations

from typing import Any

import click

from app.cli.common import OPERATOR, Failure, emit, json_option, main, parse_date, run, token_data
from app.cli.tokens import token_line
from app.config import Settings
from app.errors import DockyardError
from app.groups import access_tokens
from app.groups import services as groups
from app.groups.access_tokens import CreatedGroupAccessToken, GroupAccessToken
from app.groups.records import parse_role


def group_token_data(item: GroupAccessToken) -> dict[str, Any]:
    return {
        **token_data(item.token),
        "role": item.access_level.name.lower(),
        "access_level": int(item.access_level),
        "username": item.bot_username,
    }


@main.group("group-token")
def group_token() -> None:
    """Group access tokens: a bot member of one group (and its subgroups) with a role."""


@group_token.command("create")
@click.argument("group_path")
@click.option("--name", required=True)
@click.option("--role", required=True, help="guest|reporter|developer|maintainer|owner")
@click.option("--scopes", required=True, help="api,read_api,read_registry,write_registry")
@click.option("--expires-at", help="YYYY-MM-DD")
@json_option
def group_token_create(
    group_path: str, name: str, role: str, scopes: str, expires_at: str | None, as_json: bool
) -> None:
    """Create a group access token; the secret is printed once."""
    try:
        level = parse_role(role)
    except DockyardError as error:
        raise Failure(f"--role: {error.message}") from None
    expiry = parse_date(expires_at)

    async def work(settings: Settings) -> CreatedGroupAccessToken:
        group = await groups.find_readable_group(OPERATOR, group_path)
        return await access_tokens.create_group_access_token(
            OPERATOR, group, name, level, scopes, expiry
        )

    created = run(work)
    data = {**group_token_data(created.group_access_token), "token": created.secret}
    emit(as_json, data, created.secret)


@group_token.command("revoke")
@click.argument("group_path")
@click.argument("name")
@json_option
def group_token_revoke(group_path: str, name: str, as_json: bool) -> None:
    """Revoke a group access token by name: it stops working at once."""

    async def work(settings: Settings) -> GroupAccessToken:
        group = await groups.find_readable_group(OPERATOR, group_path)
        return await access_tokens.revoke_group_access_token(OPERATOR, group, name)

    revoked = run(work)
    emit(as_json, group_token_data(revoked), f"revoked group access token {revoked.token.name}")


@group_token.command("list")
@click.argument("group_path")
@json_option
def group_token_list(group_path: str, as_json: bool) -> None:
    """List a group's access tokens with their role and last use (never their secrets)."""

    async def work(settings: Settings) -> list[GroupAccessToken]:
        group = await groups.find_readable_group(OPERATOR, group_path)
        return await access_tokens.list_group_access_tokens(OPERATOR, group)

    found = run(work)
    lines = [
        f"{token_line(item.token)}\t{item.access_level.label}\tlast used "
        f"{item.token.last_used_at.isoformat() if item.token.last_used_at else 'never'}"
        for item in found
    ]
    emit(
        as_json,
        {"group_access_tokens": [group_token_data(item) for item in found]},
        "\n".join(lines),
    )
