"""A group's Dependency Proxy page (`/groups/<path>/-/dependency_proxy`) and Clear cache."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from app.accounts.principal import Principal
from app.dependency_proxy.models import CacheStatus, Manifest
from app.dependency_proxy.services.clear_cache import clear_cache as clear
from app.dependency_proxy.services.find_warm_jobs import find_warm_jobs
from app.dependency_proxy.services.group_cache import (
    CacheSummary,
    get_cache_summary,
    get_owner_cache_summary,
    list_manifests,
)
from app.dependency_proxy.services.relate_manifests import Relation, relate_manifests
from app.errors import InvalidInput
from app.groups.models import Group
from app.instance.services import get_instance_settings
from web.rendering import flash, group_crumbs, redirect, render
from web.usage_charts import usage_charts

PAGE = "dependency_proxy"
PAGE_SIZE = 20
WARM_JOBS_SHOWN = 5
CLEARED = "All items in the cache are scheduled for removal."
CLEARING = "Clearing the cache: its items are being scheduled for removal."


@dataclass(frozen=True)
class ImageRow:
    """One cached manifest as the page shows it."""

    id: int
    name: str  # image:tag, or image@sha256:… for digest pulls
    shown_name: str  # the name, with a digest shortened
    pull_path: str
    short_digest: str
    size: int | None  # the image (config + layers); None for a multi-platform index
    cached_at: datetime
    last_pulled_at: datetime
    scheduled_for_deletion: bool
    by_digest: bool
    pinned: bool
    # A digest row of an image also cached by tag (GraphQL lists it apart, as
    # GitLab does): the tag row's name, and the platform when it is one of its index's.
    part_of: str | None = None
    platform: str | None = None


def _name(manifest: Manifest) -> str:
    by_digest = manifest.reference.startswith("sha256:")
    return f"{manifest.image_name}{'@' if by_digest else ':'}{manifest.reference}"


def image_row(manifest: Manifest, prefix: str, relation: Relation | None = None) -> ImageRow:
    name = _name(manifest)
    by_digest = manifest.reference.startswith("sha256:")
    return ImageRow(
        id=manifest.id,
        name=name,
        shown_name=f"{manifest.image_name}@{manifest.reference[:19]}…" if by_digest else name,
        pull_path=f"{prefix}/{name}",
        short_digest=manifest.digest.split(":", 1)[-1][:7],
        size=manifest.image_size,
        cached_at=manifest.created_at,
        last_pulled_at=manifest.read_at,
        scheduled_for_deletion=manifest.status
        in (CacheStatus.PENDING_DESTRUCTION, CacheStatus.PROCESSING),
        by_digest=by_digest,
        pinned=bool(manifest.pinned),
        part_of=_name(relation.parent) if relation else None,
        platform=relation.platform if relation else None,
    )


def _upstream_host(request: Request) -> str:
    """Where a cleared cache is filled from again (the clear dialog says so)."""
    return urlsplit(request.app.state.settings.upstream_url).netloc


async def _summary(request: Request, principal: Principal, group: Group) -> CacheSummary:
    runtime = getattr(request.app.state, "runtime", None)
    return await get_cache_summary(
        principal,
        group,
        runtime.statistics if runtime else None,
        request.app.state.settings,
        rate_limit=runtime.upstream.rate_limit if runtime else None,
    )


async def _page_of_images(
    request: Request, principal: Principal, group: Group, prefix: str
) -> tuple[list[ImageRow], dict[str, str | None]]:
    after, before = request.query_params.get("after"), request.query_params.get("before")
    try:
        if before:
            page = await list_manifests(principal, group, last=PAGE_SIZE, before=before)
        else:
            page = await list_manifests(principal, group, first=PAGE_SIZE, after=after or None)
    except InvalidInput:  # a stale or edited cursor: start again from the newest
        page = await list_manifests(principal, group, first=PAGE_SIZE)
    base = f"/groups/{group.full_path}/-/{PAGE}"
    links = {
        "next": f"{base}?after={page.end_cursor}" if page.has_next_page else None,
        "previous": f"{base}?before={page.start_cursor}" if page.has_previous_page else None,
    }
    related = await relate_manifests(principal, group, page.items)
    return [image_row(item, prefix, relation) for item, relation in related], links


async def show(request: Request, principal: Principal, group: Group) -> Response:
    summary = await _summary(request, principal, group)
    instance = await get_instance_settings(request.app.state.settings)
    images, links = await _page_of_images(request, principal, group, summary.image_prefix)
    context: dict[str, Any] = {
        "group": group,
        "summary": summary,
        "instance_enabled": instance.dependency_proxy_enabled,
        "images": images,
        "links": links,
        "is_owner": summary.can_administer,
        "crumbs": [*group_crumbs(group), ("Dependency Proxy", None)],
        "tab": "dependency_proxy",
        "upstream_host": _upstream_host(request),
        "usage": await usage_charts(request, principal, group),
    }
    warm = await find_warm_jobs(principal, group, first=WARM_JOBS_SHOWN)
    context.update(can_warm=warm.may_start, warm_jobs=warm.jobs)
    return render(request, "dependency_proxy.html", context, principal=principal)


async def confirm_clear_cache(request: Request, principal: Principal, group: Group) -> Response:
    """The confirmation as a page, for browsers without scripts (the dialog's fallback)."""
    summary = await get_owner_cache_summary(
        principal, group, None, request.app.state.settings, what="clear its cache"
    )
    context = {
        "group": group,
        "summary": summary,
        "crumbs": [
            *group_crumbs(group),
            ("Dependency Proxy", f"/groups/{group.full_path}/-/{PAGE}"),
            ("Clear cache", None),
        ],
        "upstream_host": _upstream_host(request),
    }
    return render(request, "clear_cache.html", context, principal=principal)


async def clear_cache(request: Request, principal: Principal, group: Group) -> Response:
    # A large cache goes on clearing in the background; the page shows its progress.
    runtime = getattr(request.app.state, "runtime", None)
    background = runtime.background if runtime is not None else None
    result = await clear(principal, group, background=background)  # non-Owners: a 403 page
    flash(request, CLEARED if result.finished else CLEARING)
    return redirect(f"/groups/{group.full_path}/-/{PAGE}")


pages = {
    ("GET", PAGE): show,
    ("GET", f"{PAGE}/clear_cache"): confirm_clear_cache,
    ("POST", f"{PAGE}/clear_cache"): clear_cache,
}
