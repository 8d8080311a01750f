"""One cached image on the Dependency Proxy page: delete it (with its confirmation
page for browsers without scripts) and pin or unpin it. Owners only: the
services decide, this module translates their answers into pages and messages."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.accounts.principal import Principal
from app.dependency_proxy.cached_images import ManifestRef
from app.dependency_proxy.services.delete_manifest import delete_manifest
from app.dependency_proxy.services.find_cached_image import find_cached_image
from app.dependency_proxy.services.group_cache import get_owner_cache_summary
from app.dependency_proxy.services.pin_manifest import pin_manifest
from app.errors import NotFound
from app.groups.models import Group
from web.guards import checked, text
from web.rendering import error_page, flash, group_crumbs, redirect, render

PAGE = "dependency_proxy"
GONE = "That image is no longer in the cache."


def _page(group: Group) -> str:
    return f"/groups/{group.full_path}/-/{PAGE}"


def _ref(group: Group, value: str) -> ManifestRef | None:
    """The row a form names, in the page's group; None for anything but an id."""
    if not value.isdigit() or len(value) > 18:
        return None
    return ManifestRef(manifest_id=int(value), group_id=group.id)


async def confirm_delete(request: Request, principal: Principal, group: Group) -> Response:
    """The confirmation as a page, for browsers without scripts (the dialog's fallback)."""
    summary = await get_owner_cache_summary(
        principal, group, None, request.app.state.settings, what="delete its cached images"
    )
    ref = _ref(group, request.query_params.get("id", ""))
    try:
        if ref is None:
            raise NotFound(GONE)
        image = await find_cached_image(principal, group, ref)
    except NotFound:
        return error_page(request, 404, GONE, principal)
    context = {
        "group": group,
        "summary": summary,
        "image": image,
        "crumbs": [*group_crumbs(group), ("Dependency Proxy", _page(group)), ("Delete", None)],
    }
    return render(request, "delete_image.html", context, principal=principal)


async def delete(request: Request, principal: Principal, group: Group) -> Response:
    form = await request.form()
    ref = _ref(group, text(form, "manifest_id"))
    if ref is None:
        flash(request, GONE, "alert")
        return redirect(_page(group))
    try:
        result = await delete_manifest(
            principal, ref, with_platforms=checked(form, "delete_platforms")
        )  # non-Owners: a 403 page
    except NotFound:
        flash(request, GONE, "alert")
        return redirect(_page(group))
    released = f" {result.blobs_released} blob(s) are scheduled for removal."
    flash(request, f"Deleted {', '.join(result.deleted)} from the cache.{released}")
    return redirect(_page(group))


async def pin(request: Request, principal: Principal, group: Group) -> Response:
    form = await request.form()
    ref = _ref(group, text(form, "manifest_id"))
    if ref is None:
        flash(request, GONE, "alert")
        return redirect(_page(group))
    pinned = checked(form, "pinned")
    try:
        result = await pin_manifest(principal, ref, pinned=pinned)  # non-Owners: a 403 page
    except NotFound:
        flash(request, GONE, "alert")
        return redirect(_page(group))
    names = ", ".join(result.images)
    flash(
        request,
        f"Pinned {names}: automatic cleanup will keep it."
        if pinned
        else f"Unpinned {names}: automatic cleanup applies to it again.",
    )
    return redirect(_page(group))


pages = {
    ("GET", f"{PAGE}/images/delete"): confirm_delete,
    ("POST", f"{PAGE}/images/delete"): delete,
    ("POST", f"{PAGE}/images/pin"): pin,
}
