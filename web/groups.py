"""Your groups (`/`), group creation, and `/groups/<full path>[/-/<page>]` dispatch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.accounts.principal import Principal
from app.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from app.groups import services as groups
from app.groups.models import AccessLevel, Group
from web import (
    access_tokens,
    cache_images,
    dependency_proxy,
    members,
    settings,
    upstreams,
    warm_jobs,
)
from web.guards import signed_in, text
from web.rendering import error_page, flash, group_crumbs, redirect, render, sentence

GroupPage = Callable[[Request, Principal, Group], Awaitable[Response]]

GROUP_PAGES: dict[tuple[str, str], GroupPage] = {
    **dependency_proxy.pages,
    **cache_images.pages,
    **warm_jobs.pages,
    **settings.pages,
    **upstreams.pages,
    **members.pages,
    **access_tokens.pages,
}


async def _dashboard(
    request: Request,
    principal: Principal,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    memberships = await groups.my_groups(principal)
    owned = [item.group for item in memberships if item.access_level >= AccessLevel.OWNER]
    if form is None:
        parent = await _offered_parent(request, principal, owned)
        form = {"parent": parent.full_path if parent else ""}
        if parent is not None and parent not in owned:
            owned.append(parent)
    return render(
        request,
        "dashboard.html",
        {
            "memberships": memberships,
            "owned_groups": owned,
            "form": form or {},
            "create_error": error,
            "crumbs": [("Groups", None)],
        },
        status_code=status_code,
        principal=principal,
    )


async def _offered_parent(
    request: Request, principal: Principal, owned: list[Group]
) -> Group | None:
    """The parent a group page's "New subgroup" asks for (`/?parent=`), when it is one
    the user may create subgroups in; anything else is ignored, never echoed."""
    wanted = request.query_params.get("parent", "").strip("/").lower()
    for group in owned:
        if group.full_path.lower() == wanted:
            return group
    if wanted and principal.is_admin:  # admins own every group without being members
        try:
            return await groups.find_readable_group(principal, wanted)
        except NotFound:
            return None
    return None


@signed_in
async def dashboard(request: Request, principal: Principal) -> Response:
    return await _dashboard(request, principal)


@signed_in
async def create_group(request: Request, principal: Principal) -> Response:
    form = await request.form()
    values = {name: text(form, name) for name in ("parent", "path", "name")}
    full_path = "/".join(part for part in (values["parent"], values["path"]) if part)
    if not values["path"]:
        return await _dashboard(request, principal, values, "Group path can't be blank.", 400)
    try:
        group = await groups.create_group(principal, full_path, values["name"] or None)
    except (InvalidInput, AlreadyExists, NotFound, PermissionDenied) as error:
        return await _dashboard(request, principal, values, sentence(error.message), 400)
    flash(request, f"Group {group.full_path} was created.")
    return redirect(f"/groups/{group.full_path}/-/dependency_proxy")


async def overview(request: Request, principal: Principal, group: Group) -> Response:
    view = await groups.group_overview(principal, group)
    return render(
        request,
        "group_overview.html",
        {
            "group": group,
            "role": view.role,
            "subgroups": view.subgroups,
            "is_owner": view.is_owner,
            "crumbs": group_crumbs(group),
            "tab": "overview",
        },
        principal=principal,
    )


@signed_in
async def group_page(request: Request, principal: Principal) -> Response:
    full_path = request.path_params["full_path"].strip("/")
    group_path, _, page = full_path.partition("/-/")
    page = page.strip("/")
    handler: GroupPage | None = GROUP_PAGES.get((request.method, page))
    if not page and request.method == "GET":
        handler = overview
    group = await groups.find_readable_group(principal, group_path)
    if handler is None:
        return error_page(request, 404, f"There is no page {page!r} in this group.", principal)
    if group.full_path != group_path and request.method == "GET":
        # Canonical spelling of the path (it is matched regardless of case).
        suffix = f"/-/{page}" if page else ""
        query = f"?{request.url.query}" if request.url.query else ""
        return redirect(f"/groups/{group.full_path}{suffix}{query}")
    return await handler(request, principal, group)


routes = [
    Route("/", dashboard, methods=["GET"]),
    Route("/groups", create_group, methods=["POST"]),
    Route("/groups/{full_path:path}", group_page, methods=["GET", "POST"]),
]
