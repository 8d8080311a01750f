"""`dockyard` commands: The cache and the GraphQL schema."""

from __future__ import annotations

from dataclasses import asdict

import click

from app.cli.common import OPERATOR, emit, json_option, main, run
from app.config import Settings
from app.groups import services as groups

# --- cache and GraphQL schema ----------------------------------------------------------------


@main.group()
def cache() -> None:
    """Clear a group's cache, delete, pin or pre-warm images, run the cleanup now, recount."""


@cache.command("clear")
@click.argument("group_path")
@json_option
def cache_clear(group_path: str, as_json: bool) -> None:
    """Schedule every cached manifest and blob of GROUP_PATH for deletion."""
    from app.dependency_proxy.services.clear_cache import ClearCacheResult, clear_cache

    async def work(settings: Settings) -> ClearCacheResult:
        group = await groups.find_readable_group(OPERATOR, group_path)
        return await clear_cache(OPERATOR, group)

    result = run(work)  # in chunks: a busy server's pulls go on meanwhile
    data = {
        "group": group_path,
        "manifests_marked": result.manifests_marked,
        "blobs_marked": result.blobs_marked,
    }
    text = (
        f"scheduled {result.manifests_marked} manifests and {result.blobs_marked} blobs "
        f"of {group_path} for deletion (run `dockyard cache cleanup` to delete them now)"
    )
    emit(as_json, data, text)


@cache.command("cleanup")
@json_option
def cache_cleanup(as_json: bool) -> None:
    """Run the deletion, TTL expiry and eviction (size limits) passes now."""
    from app.dependency_proxy.cache import PullThroughCache
    from app.dependency_proxy.cleanup import CleanupResult, run_cleanup_once

    async def work(settings: Settings) -> CleanupResult:
        cache = PullThroughCache.from_settings(settings)
        try:
            await cache.store.start()
            return await run_cleanup_once(cache)
        finally:
            await cache.aclose()

    result = run(work)
    text = (
        f"expired {result.manifests_expired} manifests and {result.blobs_expired} blobs; "
        f"deleted {result.manifests_deleted} manifests, {result.blobs_deleted} blobs "
        f"and {result.files_deleted} files; {result.failed} failed; "
        f"evicted {result.images_evicted} images over the size limits"
    )
    emit(as_json, asdict(result), text)


@cache.command("recount")
@click.argument("group_path", required=False)
@json_option
def cache_recount(group_path: str | None, as_json: bool) -> None:
    """Recompute the cache totals of GROUP_PATH (or of every group) from the rows."""
    from app.dependency_proxy.cache_totals import Recount, recount

    async def work(settings: Settings) -> list[tuple[str, Recount]]:
        found = (
            [await groups.find_readable_group(OPERATOR, group_path)]
            if group_path
            else await groups.list_groups(OPERATOR)
        )
        return [(item.full_path, await recount(item.id)) for item in found]

    results = run(work)
    wrong = [(path, item) for path, item in results if not item.was_right]
    data = {
        "groups": len(results),
        "corrected": [
            {"group": path, "stored": asdict(item.stored), "counted": asdict(item.counted)}
            for path, item in wrong
        ],
    }
    plural = "" if len(results) == 1 else "s"
    lines = [f"recounted {len(results)} group{plural}; {len(wrong)} had wrong totals"]
    lines += [f"{path}: {item.stored} -> {item.counted}" for path, item in wrong]
    emit(as_json, data, "\n".join(lines))


@main.command("graphql-schema")
def graphql_schema() -> None:
    """Print the GraphQL schema (SDL), as committed in graphql/schema.graphql."""
    from app.gql.schema import sdl

    click.echo(sdl(), nl=False)
