"""`dockyard` commands: Personal access tokens and deploy tokens."""

from __future__ import annotations

import click

from app.accounts import personal_access_tokens as tokens
from app.accounts.models import DeployToken, PersonalAccessToken
from app.accounts.records import CreatedDeployToken, CreatedToken
from app.cli.common import OPERATOR, emit, json_option, main, parse_date, run, token_data
from app.config import Settings
from app.groups import deploy_tokens
from app.groups import services as groups

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

    async def work(settings: Settings) -> CreatedToken:
        return await tokens.create_personal_access_token(
            OPERATOR, name, scopes, expiry, username=username
        )

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
        return await tokens.revoke_personal_access_token(OPERATOR, name, username=username)

    revoked = run(work)
    emit(as_json, token_data(revoked), f"revoked token {revoked.name}")


@token.command("list")
@click.argument("username")
@json_option
def token_list(username: str, as_json: bool) -> None:
    """List a user's personal access tokens (never their secrets)."""

    async def work(settings: Settings) -> list[PersonalAccessToken]:
        return await tokens.list_personal_access_tokens(OPERATOR, username=username)

    found = run(work)
    lines = [token_line(item) for item in found]
    emit(as_json, {"tokens": [token_data(item) for item in found]}, "\n".join(lines))


@token.command("rotate")
@click.argument("username")
@click.argument("name")
@click.option("--expires-at", help="YYYY-MM-DD (default: the old token's)")
@json_option
def token_rotate(username: str, name: str, expires_at: str | None, as_json: bool) -> None:
    """Rotate a token: a new secret (printed once), same name and scopes; the old one
    stops working at once."""
    expiry = parse_date(expires_at)

    async def work(settings: Settings) -> CreatedToken:
        return await tokens.rotate_personal_access_token(
            OPERATOR, name, username=username, expires_at=expiry
        )

    created = run(work)
    data = {**token_data(created.personal_access_token), "token": created.secret}
    emit(as_json, data, created.secret)


def token_line(item: PersonalAccessToken | DeployToken) -> str:
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

    async def work(settings: Settings) -> CreatedDeployToken:
        found_group = await groups.find_readable_group(OPERATOR, group_path)
        return await deploy_tokens.create_deploy_token(
            OPERATOR, found_group, name, scopes, expiry, username
        )

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
        found_group = await groups.find_readable_group(OPERATOR, group_path)
        return await deploy_tokens.revoke_deploy_token(OPERATOR, found_group, name)

    revoked = run(work)
    emit(as_json, token_data(revoked), f"revoked deploy token {revoked.name}")


@deploy_token.command("list")
@click.argument("group_path")
@json_option
def deploy_token_list(group_path: str, as_json: bool) -> None:
    """List a group's deploy tokens (never their secrets)."""

    async def work(settings: Settings) -> list[DeployToken]:
        found_group = await groups.find_readable_group(OPERATOR, group_path)
        return await deploy_tokens.list_deploy_tokens(OPERATOR, found_group)

    found = run(work)
    lines = [f"{item.username}\t{token_line(item)}" for item in found]
    emit(as_json, {"deploy_tokens": [token_data(item) for item in found]}, "\n".join(lines))
