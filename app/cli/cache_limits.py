"""`dockyard cache limit GROUP SIZE|none` and `dockyard cache evict [GROUP] [--dry-run]`.

The limit goes through the same checked service as the settings page and
GraphQL (`services/update_settings.py`); eviction is the cleanup worker's
own pass (`cleanup.evict_over_limits`, `eviction.py`), run now.
"""

from __future__ import annotations

from typing import Any

import click

from app.cli.cache import cache
from app.cli.common import OPERATOR, Failure, emit, json_option, run
from app.config import Settings, parse_size
from app.groups import services as groups


@cache.command("limit")
@click.argument("group_path")
@click.argument("size")
@json_option
def cache_limit(group_path: str, size: str, as_json: bool) -> None:
    """Limit GROUP_PATH's cache to SIZE (10GiB, 500MB, bytes), or `none` to remove the
    limit. Over it, the least recently pulled images are evicted."""
    from app.config import human_size
    from app.dependency_proxy.services.update_settings import update_dependency_proxy_settings

    remove = size.strip().lower() == "none"
    try:
        limit = None if remove else parse_size(size)
    except ValueError as error:
        raise Failure(f"SIZE: {error}") from None

    async def work(settings: Settings) -> str:
        group = await groups.find_readable_group(OPERATOR, group_path)
        await update_dependency_proxy_settings(
            OPERATOR, group, settings, size_limit_bytes=limit, remove_size_limit=remove
        )
        return group.full_path

    path = run(work)
    text = (
        f"{path} has no size limit"
        if limit is None
        else f"{path} may cache {human_size(limit)} ({limit} bytes); "
        "the cleanup worker evicts the least recently pulled images over it"
    )
    emit(as_json, {"group": path, "size_limit_bytes": limit}, text)


@cache.command("evict")
@click.argument("group_path", required=False)
@click.option("--dry-run", is_flag=True, help="Only say what would go and why.")
@json_option
def cache_evict(group_path: str | None, dry_run: bool, as_json: bool) -> None:
    """Evict the least recently pulled images of groups over their size limit (of
    GROUP_PATH only, if given), then across groups while the instance is over its
    disk budget; never an image pulled in the last 10 minutes, a pinned one, or one
    being downloaded."""
    from app.dependency_proxy.cache import PullThroughCache
    from app.dependency_proxy.cleanup import EvictionResult, evict_over_limits

    async def work(settings: Settings) -> EvictionResult:
        group_id = None
        if group_path is not None:
            group_id = (await groups.find_readable_group(OPERATOR, group_path)).id
        pull_through = PullThroughCache.from_settings(settings)
        try:
            await pull_through.store.start()
            return await evict_over_limits(pull_through, group_id=group_id, dry_run=dry_run)
        finally:
            await pull_through.aclose()

    result = run(work)
    emit(as_json, _data(result, dry_run), _text(result, dry_run))


def _data(result: Any, dry_run: bool) -> dict[str, Any]:
    from app.dependency_proxy.eviction import why

    items = result.plan.evictions if dry_run else result.evicted
    return {
        "dry_run": dry_run,
        "evicted": [
            {
                "group": item.group_path,
                "image": item.image,
                "size_bytes": item.size_bytes,
                "last_pulled": item.last_pulled,
                "reason": item.reason,
                "limit_bytes": item.limit_bytes,
                "why": why(item),
            }
            for item in items
        ],
        "bytes": sum(item.size_bytes for item in items),
        "over": [_overrun(item) for item in result.plan.over],
        "still_over": [_overrun(item) for item in result.plan.still_over],
        "blobs_deleted": result.blobs_deleted,
        "files_deleted": result.files_deleted,
    }


def _overrun(item: Any) -> dict[str, Any]:
    from app.dependency_proxy.eviction import why

    return {
        "group": item.group_path,
        "size_bytes": item.size_bytes,
        "limit_bytes": item.limit_bytes,
        "reason": item.reason,
        "why": why(item),
    }


def _text(result: Any, dry_run: bool) -> str:
    from app.config import human_size
    from app.dependency_proxy.eviction import RECENT, why

    items = result.plan.evictions if dry_run else result.evicted
    verb = "would evict" if dry_run else "evicted"
    lines = [
        f"{verb} {item.group_path} {item.image} ({human_size(item.size_bytes)}, "
        f"last pulled {item.last_pulled:%Y-%m-%d %H:%M} UTC): {why(item)}"
        for item in items
    ]
    for item in result.plan.still_over:
        where = item.group_path or "the instance"
        lines.append(
            f"{where} stays {why(item)} at {human_size(item.size_bytes)}: what is left was "
            f"pulled in the last {RECENT.seconds // 60} minutes, is pinned, or is being downloaded"
        )
    if not lines:
        lines.append(
            "nothing to evict: every group is under its limit and the instance under its budget"
        )
    elif not dry_run:
        lines.append(
            f"{len(items)} images, {human_size(sum(i.size_bytes for i in items))}; "
            f"{result.files_deleted} files deleted"
        )
    return "\n".join(lines)
