"""`dockyard cache delete|pin|unpin GROUP IMAGE[:TAG|@DIGEST]`: one cached image.

The command line acts as the operator, through the same checked services as
the page and GraphQL (`services/delete_manifest.py`, `services/pin_manifest.py`).
"""

from __future__ import annotations

import click

from app.cli.cache import cache
from app.cli.common import OPERATOR, emit, json_option, run
from app.config import Settings
from app.groups import services as groups


@cache.command("delete")
@click.argument("group_path")
@click.argument("image")
@click.option(
    "--with-platforms",
    is_flag=True,
    help="For a multi-platform index: also delete its cached platform manifests.",
)
@json_option
def cache_delete(group_path: str, image: str, with_platforms: bool, as_json: bool) -> None:
    """Delete IMAGE[:TAG|@DIGEST] from GROUP_PATH's cache; its blobs are released
    when no other image of the group names them."""
    from app.dependency_proxy.cached_images import ImageName, ManifestRef
    from app.dependency_proxy.services.delete_manifest import (
        DeleteManifestResult,
        delete_manifest,
    )

    async def work(settings: Settings) -> DeleteManifestResult:
        group = await groups.find_readable_group(OPERATOR, group_path)
        ref = ManifestRef(group_id=group.id, name=ImageName.parse(image))
        return await delete_manifest(OPERATOR, ref, with_platforms=with_platforms)

    result = run(work)
    data = {
        "group": result.group_path,
        "deleted": list(result.deleted),
        "blobs_released": result.blobs_released,
    }
    text = (
        f"deleted {', '.join(result.deleted)} from {result.group_path}; "
        f"{result.blobs_released} blobs scheduled for deletion "
        "(run `dockyard cache cleanup` to delete them now)"
    )
    emit(as_json, data, text)


def _pin(group_path: str, image: str, pinned: bool, as_json: bool) -> None:
    from app.dependency_proxy.cached_images import ImageName, ManifestRef
    from app.dependency_proxy.services.pin_manifest import PinResult, pin_manifest

    async def work(settings: Settings) -> PinResult:
        group = await groups.find_readable_group(OPERATOR, group_path)
        ref = ManifestRef(group_id=group.id, name=ImageName.parse(image))
        return await pin_manifest(OPERATOR, ref, pinned=pinned)

    result = run(work)
    data = {"group": result.group_path, "images": list(result.images), "pinned": result.pinned}
    verb = "pinned" if pinned else "unpinned"
    emit(as_json, data, f"{verb} {', '.join(result.images)} in {result.group_path}")


@cache.command("pin")
@click.argument("group_path")
@click.argument("image")
@json_option
def cache_pin(group_path: str, image: str, as_json: bool) -> None:
    """Pin IMAGE[:TAG|@DIGEST] in GROUP_PATH's cache: the TTL policy never expires it."""
    _pin(group_path, image, True, as_json)


@cache.command("unpin")
@click.argument("group_path")
@click.argument("image")
@json_option
def cache_unpin(group_path: str, image: str, as_json: bool) -> None:
    """Unpin IMAGE[:TAG|@DIGEST] in GROUP_PATH's cache."""
    _pin(group_path, image, False, as_json)
