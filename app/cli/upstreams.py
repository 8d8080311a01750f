"""`dockyard upstream`: a group's upstream registries (add, list, remove)."""

from __future__ import annotations

import sys
from typing import Any

import click

from app.cli.common import OPERATOR, Failure, emit, json_option, main, run
from app.config import Settings
from app.dependency_proxy.services.add_upstream import add_upstream
from app.dependency_proxy.services.list_upstreams import list_upstreams
from app.dependency_proxy.services.remove_upstream import remove_upstream
from app.dependency_proxy.upstream_lists import UpstreamListing, UpstreamView
from app.groups import services as groups


@main.group()
def upstream() -> None:
    """Manage a group's upstream registries (asked in order)."""


def view_data(view: UpstreamView) -> dict[str, Any]:
    # Never the password: only whether one is set.
    return {
        "name": view.name,
        "url": view.url,
        "position": view.position,
        "docker_hub": view.docker_hub,
        "username": view.username,
        "has_credentials": view.has_credentials,
        "cache_validity_hours": view.cache_validity_hours,
    }


def _line(view: UpstreamView) -> str:
    account = f"as {view.username}" if view.username else "anonymous"
    return f"{view.position}\t{view.name}\t{view.url}\t{account}"


@upstream.command("add")
@click.argument("group_path")
@click.option("--url", required=True, help="The registry's base URL (https://ghcr.io).")
@click.option("--name", help="A short name (default: from the host).")
@click.option("--username")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--position", type=int, help="1 is asked first (default: last).")
@click.option("--cache-validity-hours", type=int, help="Serve a cached tag this long unchecked.")
@json_option
def upstream_add(
    group_path: str,
    url: str,
    name: str | None,
    username: str | None,
    password_stdin: bool,
    position: int | None,
    cache_validity_hours: int | None,
    as_json: bool,
) -> None:
    """Add an upstream to GROUP_PATH's list (it becomes the group's own list)."""
    if password_stdin != (username is not None):
        raise Failure("give --username and --password-stdin together")
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    if password_stdin and not password:
        raise Failure("--password-stdin: no password on stdin")

    async def work(settings: Settings) -> UpstreamView:
        group = await groups.find_readable_group(OPERATOR, group_path)
        return await add_upstream(
            OPERATOR,
            group,
            settings,
            url=url,
            name=name,
            username=username,
            password=password,
            position=position,
            cache_validity_hours=cache_validity_hours,
        )

    view = run(work)
    emit(
        as_json,
        {"group": group_path, **view_data(view)},
        f"added upstream {view.name} ({view.url}) to {group_path} at position {view.position}",
    )


@upstream.command("list")
@click.argument("group_path")
@json_option
def upstream_list(group_path: str, as_json: bool) -> None:
    """List the upstreams GROUP_PATH's pulls use, in order."""

    async def work(settings: Settings) -> UpstreamListing:
        group = await groups.find_readable_group(OPERATOR, group_path)
        return await list_upstreams(OPERATOR, group, settings)

    listing = run(work)
    note = ""
    if listing.inherited_from:
        note = f"(inherited from {listing.inherited_from})\n"
    elif listing.is_default:
        note = "(the default: Docker Hub only)\n"
    data = {
        "group": listing.group_path,
        "inherited_from": listing.inherited_from,
        "default": listing.is_default,
        "upstreams": [view_data(view) for view in listing.upstreams],
    }
    emit(as_json, data, note + "\n".join(_line(view) for view in listing.upstreams))


@upstream.command("remove")
@click.argument("group_path")
@click.argument("name")
@json_option
def upstream_remove(group_path: str, name: str, as_json: bool) -> None:
    """Remove the upstream NAME from GROUP_PATH's own list."""

    async def work(settings: Settings) -> None:
        group = await groups.find_readable_group(OPERATOR, group_path)
        await remove_upstream(OPERATOR, group, name)

    run(work)
    emit(as_json, {"group": group_path, "name": name, "removed": True}, f"removed upstream {name}")
