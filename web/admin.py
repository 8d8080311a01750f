"""The admin area (`/admin`): instance settings, users, every group's cache size.

Users and groups are keyset pages, searchable; every action goes through a
checked service (administrators only), so this module only translates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.accounts import token_lifetime, users
from app.accounts.principal import Principal
from app.config import parse_size
from app.dependency_proxy.eviction import free_bytes, instance_size
from app.dependency_proxy.services.group_cache import get_cache_totals_of_groups
from app.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from app.groups import services as groups
from app.groups.models import Group
from app.instance import services as instance
from app.pagination import Page
from web.guards import checked, parse_int_field, signed_in, text
from web.paging import Listing, listing
from web.rendering import flash, redirect, render, sentence

USER_ACTIONS = ("block", "unblock", "make_admin", "remove_admin")


ADMIN_ONLY = "The admin area is for administrators only."


async def _page(
    request: Request, principal: Principal, *, status_code: int = 200, **extra: Any
) -> Response:
    async def users_of(**page: Any) -> Page[Any]:
        return await users.users_page(principal, **page)

    user_list = await listing(request, "users_", users_of)  # refuses non-admins first
    current = await instance.get_instance_settings(request.app.state.settings)
    max_days = await token_lifetime.max_lifetime_days()
    context: dict[str, Any] = {
        "instance": current,
        "settings_form": {
            "dependency_proxy_enabled": current.dependency_proxy_enabled,
            "registry_token_expire_minutes": str(current.registry_token_expire_minutes),
            "max_token_lifetime_days": str(max_days) if max_days else "",
            "disk_budget": (
                "" if current.disk_budget_from_setting else _budget_text(current.disk_budget_bytes)
            ),
        },
        "disk": await _disk(request, current.disk_budget_bytes),
        "settings_error": None,
        "users": user_list,
        "user_form": {},
        "user_error": None,
        "groups": await _groups(request, principal),
        "crumbs": [("Admin area", None)],
        "other_hosts": list(request.app.state.host_mismatches.hosts),
    }
    context.update(extra)
    return render(request, "admin.html", context, status_code=status_code, principal=principal)


def _budget_text(size: int) -> str:
    if size == 0:
        return "none"
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


@dataclass(frozen=True)
class DiskUse:
    """The cache against its budget, and the data folder's disk."""

    cached_bytes: int
    budget_bytes: int  # 0: none
    setting_bytes: int  # DOCKYARD_DISK_BUDGET
    free_bytes: int | None  # None: the data folder cannot be looked at


async def _disk(request: Request, budget: int) -> DiskUse:
    settings = request.app.state.settings
    try:
        free: int | None = free_bytes(settings.data_dir)
    except OSError:
        free = None
    return DiskUse(await instance_size(), budget, settings.disk_budget, free)


def _parse_budget(value: str) -> tuple[int | None, bool]:
    """(budget, back to the setting): empty follows DOCKYARD_DISK_BUDGET, `none` or 0 is
    no budget."""
    if not value:
        return None, True
    if value.lower() == "none":
        return 0, False
    try:
        return parse_size(value), False
    except ValueError as error:
        raise InvalidInput(f"Disk budget: {error}") from None


@dataclass(frozen=True)
class GroupRow:
    """One group in the admin area: from the groups domain, and its cache's totals."""

    group: Group
    member_count: int
    manifest_count: int
    blob_count: int
    total_size_bytes: int

    @property
    def id(self) -> int:
        return self.group.id


async def _groups(request: Request, principal: Principal) -> Listing[GroupRow]:
    async def groups_of(**page: Any) -> Page[Any]:
        return await groups.groups_with_member_count(principal, **page)

    found = await listing(request, "groups_", groups_of)
    totals = await get_cache_totals_of_groups(principal, [item.group for item in found.items])
    rows = [
        GroupRow(
            group=item.group,
            member_count=item.member_count,
            manifest_count=totals[item.group.id].manifest_count,
            blob_count=totals[item.group.id].blob_count,
            total_size_bytes=totals[item.group.id].total_size_bytes,
        )
        for item in found.items
    ]
    return Listing(rows, found.search, found.next, found.previous, found.search_field)


@signed_in
async def show(request: Request, principal: Principal) -> Response:
    try:
        return await _page(request, principal)
    except PermissionDenied:
        raise PermissionDenied(ADMIN_ONLY) from None


@signed_in
async def update_settings(request: Request, principal: Principal) -> Response:
    form = await request.form()
    values = {
        "dependency_proxy_enabled": checked(form, "dependency_proxy_enabled"),
        "registry_token_expire_minutes": text(form, "registry_token_expire_minutes"),
        "max_token_lifetime_days": text(form, "max_token_lifetime_days"),
        "disk_budget": text(form, "disk_budget"),
    }
    try:
        minutes = parse_int_field(
            str(values["registry_token_expire_minutes"]),
            "Token lifetime",
            minimum=1,
            maximum=24 * 60,
        )
        max_days_text = str(values["max_token_lifetime_days"])
        max_days = (
            parse_int_field(
                max_days_text,
                "Maximum access token lifetime",
                minimum=1,
                maximum=token_lifetime.MAX_LIFETIME_DAYS,
            )
            if max_days_text
            else None
        )
        budget, budget_from_setting = _parse_budget(str(values["disk_budget"]))
        await instance.update_instance_settings(
            principal,
            request.app.state.settings,
            dependency_proxy_enabled=bool(values["dependency_proxy_enabled"]),
            registry_token_expire_minutes=minutes,
            disk_budget_bytes=budget,
            disk_budget_from_setting=budget_from_setting,
        )
        await token_lifetime.set_max_lifetime(principal, max_days)
    except InvalidInput as error:
        return await _page(
            request,
            principal,
            status_code=400,
            settings_form=values,
            settings_error=sentence(error.message),
        )
    flash(request, "Instance settings saved.")
    return redirect("/admin")


@signed_in
async def create_user(request: Request, principal: Principal) -> Response:
    form = await request.form()
    values = {name: text(form, name) for name in ("username", "email")}
    password = form.get("password")
    try:
        user = await users.create_user(
            principal,
            values["username"],
            values["email"],
            password if isinstance(password, str) else "",
            is_admin=checked(form, "is_admin"),
        )
    except (InvalidInput, AlreadyExists) as error:
        # The password is not kept: the form asks for it again.
        return await _page(
            request,
            principal,
            status_code=400,
            user_form=values,
            user_error=sentence(error.message),
        )
    flash(request, f"User {user.username} was created.")
    return redirect("/admin#users")


@signed_in
async def user_action(request: Request, principal: Principal) -> Response:
    form = await request.form()
    username, action = text(form, "username"), text(form, "action")
    if action not in USER_ACTIONS:
        raise NotFound(f"unknown action {action!r}")
    try:
        if action == "block":
            await users.block_user(principal, username)
        elif action == "unblock":
            await users.unblock_user(principal, username)
        else:
            await users.set_admin(principal, username, action == "make_admin")
    except InvalidInput as error:
        flash(request, sentence(error.message), "alert")
        return redirect("/admin#users")
    done = {
        "block": "was blocked",
        "unblock": "was unblocked",
        "make_admin": "is now an administrator",
        "remove_admin": "is no longer an administrator",
    }
    flash(request, f"{username} {done[action]}.")
    return redirect("/admin#users")


@signed_in
async def reset_password(request: Request, principal: Principal) -> Response:
    form = await request.form()
    username, password = text(form, "username"), form.get("password")
    require_change = checked(form, "require_change")
    try:
        await users.reset_password(
            principal,
            username,
            password if isinstance(password, str) else "",
            require_change=require_change,
        )
    except InvalidInput as error:
        # The password is not kept or shown: the form asks for it again.
        flash(request, f"Password of {username} not changed: {sentence(error.message)}", "alert")
        return redirect("/admin#users")
    then = " They must choose their own at the next sign-in." if require_change else ""
    flash(request, f"Password of {username} was reset; their sessions were signed out.{then}")
    return redirect("/admin#users")


routes = [
    Route("/admin", show, methods=["GET"]),
    Route("/admin/settings", update_settings, methods=["POST"]),
    Route("/admin/users", create_user, methods=["POST"]),
    Route("/admin/users/action", user_action, methods=["POST"]),
    Route("/admin/users/password", reset_password, methods=["POST"]),
]
