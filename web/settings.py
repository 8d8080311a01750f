"""A group's Dependency Proxy settings (`/groups/<path>/-/settings/packages_and_registries`).

Small forms, each saved on its own: the proxy (enabled, revalidation
interval), automatic cleanup (TTL policy), Docker Hub credentials, and the
upstream registries (`upstreams.py`). Secrets are never rendered: the page
only says whether one is set.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.accounts.principal import Principal
from app.config import parse_size
from app.dependency_proxy.eviction import RECENT
from app.dependency_proxy.services.group_cache import CacheSummary, get_owner_cache_summary
from app.dependency_proxy.services.list_upstreams import list_upstreams
from app.dependency_proxy.services.update_settings import (
    REVALIDATION_INTERVAL_MAX,
    update_dependency_proxy_settings,
)
from app.dependency_proxy.services.update_ttl_policy import update_image_ttl_policy
from app.errors import InvalidInput
from app.groups.models import Group
from web.guards import checked, parse_int_field, text
from web.rendering import flash, group_crumbs, redirect, render, sentence

PAGE = "settings/packages_and_registries"
# The form's range: a century is plenty for a person typing days (the API takes
# anything positive, as GitLab's does).
TTL_MAX_DAYS = 36500
SAVED = "Settings saved successfully."


async def _summary(request: Request, principal: Principal, group: Group) -> CacheSummary:
    return await get_owner_cache_summary(principal, group, None, request.app.state.settings)


async def page(
    request: Request,
    principal: Principal,
    group: Group,
    *,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    summary = await _summary(request, principal, group)
    settings = request.app.state.settings
    context: dict[str, Any] = {
        "group": group,
        "summary": summary,
        "upstreams": await list_upstreams(principal, group, settings),
        "upstream_form": {},
        "upstream_error": None,
        "proxy_form": {
            "enabled": summary.enabled,
            "revalidation_interval": str(summary.revalidation_interval),
        },
        "ttl_form": {"enabled": summary.ttl_enabled, "ttl": str(summary.ttl_days)},
        "credentials_form": {"identity": summary.identity or ""},
        "limit_form": {"size_limit": _size_text(summary.size_limit_bytes)},
        "limit_error": None,
        "proxy_error": None,
        "ttl_error": None,
        "credentials_error": None,
        "recent_minutes": RECENT.seconds // 60,
        "revalidation_max": REVALIDATION_INTERVAL_MAX,
        "ttl_max": TTL_MAX_DAYS,
        "is_owner": True,
        "crumbs": [*group_crumbs(group), ("Settings", None), ("Packages and registries", None)],
        "tab": "settings",
    }
    context.update(extra)
    return render(request, "settings.html", context, status_code=status_code, principal=principal)


def back(group: Group) -> Response:
    return redirect(f"/groups/{group.full_path}/-/{PAGE}")


async def show(request: Request, principal: Principal, group: Group) -> Response:
    return await page(request, principal, group)


async def save_proxy(request: Request, principal: Principal, group: Group) -> Response:
    form = await request.form()
    values = {
        "enabled": checked(form, "enabled"),
        "revalidation_interval": text(form, "revalidation_interval"),
    }
    try:
        interval = parse_int_field(
            str(values["revalidation_interval"]),
            "Revalidation interval",
            minimum=0,
            maximum=REVALIDATION_INTERVAL_MAX,
        )
        await update_dependency_proxy_settings(
            principal,
            group,
            request.app.state.settings,
            enabled=bool(values["enabled"]),
            revalidation_interval=interval,
        )
    except InvalidInput as error:
        return await page(
            request,
            principal,
            group,
            status_code=400,
            proxy_form=values,
            proxy_error=sentence(error.message),
        )
    flash(request, SAVED)
    return back(group)


async def save_ttl(request: Request, principal: Principal, group: Group) -> Response:
    form = await request.form()
    values = {"enabled": checked(form, "enabled"), "ttl": text(form, "ttl")}
    try:
        ttl = parse_int_field(str(values["ttl"]), "Days", minimum=1, maximum=TTL_MAX_DAYS)
        await update_image_ttl_policy(principal, group, enabled=bool(values["enabled"]), ttl=ttl)
    except InvalidInput as error:
        return await page(
            request,
            principal,
            group,
            status_code=400,
            ttl_form=values,
            ttl_error=sentence(error.message),
        )
    flash(request, SAVED)
    return back(group)


def _size_text(size: int | None) -> str:
    """A limit as the form shows it: whole GiB or MiB when it is one, else bytes."""
    if size is None:
        return ""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


async def save_size_limit(request: Request, principal: Principal, group: Group) -> Response:
    form = await request.form()
    value = text(form, "size_limit")
    try:
        try:
            size = parse_size(value) if value else None
        except ValueError as error:
            raise InvalidInput(f"Size limit: {error}") from None
        await update_dependency_proxy_settings(
            principal,
            group,
            request.app.state.settings,
            size_limit_bytes=size,
            remove_size_limit=size is None,
        )
    except InvalidInput as error:
        return await page(
            request,
            principal,
            group,
            status_code=400,
            limit_form={"size_limit": value},
            limit_error=sentence(error.message),
        )
    flash(request, SAVED)
    return back(group)


async def save_credentials(request: Request, principal: Principal, group: Group) -> Response:
    form = await request.form()
    identity = text(form, "identity")
    raw_secret = form.get("secret")
    secret = raw_secret if isinstance(raw_secret, str) else ""
    summary = await _summary(request, principal, group)
    try:
        if checked(form, "clear_credentials"):
            await update_dependency_proxy_settings(
                principal, group, request.app.state.settings, clear_credentials=True
            )
            flash(request, "Docker Hub credentials removed: pulls are anonymous again.")
            return back(group)
        if not secret and identity and identity == (summary.identity or ""):
            flash(
                request, "Nothing changed: enter a new secret to replace the saved one.", "notice"
            )
            return back(group)
        if identity and not secret:
            raise InvalidInput("enter the secret (a Docker Hub access token) for this identity")
        await update_dependency_proxy_settings(
            principal, group, request.app.state.settings, identity=identity, secret=secret
        )
    except InvalidInput as error:
        # The identity is kept for the next try; the secret never goes back to the browser.
        return await page(
            request,
            principal,
            group,
            status_code=400,
            credentials_form={"identity": identity},
            credentials_error=sentence(error.message),
        )
    flash(request, SAVED)
    return back(group)


pages = {
    ("GET", PAGE): show,
    ("POST", PAGE): save_proxy,
    ("POST", f"{PAGE}/ttl"): save_ttl,
    ("POST", f"{PAGE}/credentials"): save_credentials,
    ("POST", f"{PAGE}/size_limit"): save_size_limit,
}
