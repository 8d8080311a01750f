"""`dockyard` commands: Groups and memberships."""

from __future__ import annotations

import click

from app.cli.common import OPERATOR, Failure, emit, group_data, json_option, main, run
from app.config import Settings
from app.errors import DockyardError
from app.groups import services as groups
from app.groups.models import Group, Membership

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
        return await groups.create_group(OPERATOR, full_path, name, description=description)

    created = run(work)
    emit(as_json, group_data(created), f"created group {created.full_path}")


@group.command("list")
@click.option("--search")
@json_option
def group_list(search: str | None, as_json: bool) -> None:
    """List groups."""
    found = run(lambda settings: groups.list_groups(OPERATOR, search))
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

    async def work(settings: Settings) -> tuple[Group, Membership]:
        found_group = await groups.find_readable_group(OPERATOR, group_path)
        membership = await groups.set_member(OPERATOR, found_group, username, level)
        return found_group, membership

    found_group, membership = run(work)
    member = membership.user.username
    data = {"group": found_group.full_path, "username": member, "role": level.label}
    emit(as_json, data, f"{member} is {level.label} of {found_group.full_path}")


@member.command("remove")
@click.argument("group_path")
@click.argument("username")
@json_option
def member_remove(group_path: str, username: str, as_json: bool) -> None:
    """Remove a direct member."""

    async def work(settings: Settings) -> None:
        found_group = await groups.find_readable_group(OPERATOR, group_path)
        await groups.remove_member(OPERATOR, found_group, username)

    run(work)
    emit(as_json, {"group": group_path, "username": username, "removed": True}, "removed")


@member.command("list")
@click.argument("group_path")
@json_option
def member_list(group_path: str, as_json: bool) -> None:
    """List members, inherited ones included."""

    async def work(settings: Settings) -> list[groups.MemberView]:
        found_group = await groups.find_readable_group(OPERATOR, group_path)
        return await groups.list_members(OPERATOR, found_group)

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
