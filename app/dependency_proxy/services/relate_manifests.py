"""How the manifests of one page of a group's cache relate to each other.

GitLab keeps one row per pulled reference, so one image may show up several
times: `alpine:3.19`, then `alpine@sha256:…` pulled by the same digest, or the
platform manifest docker fetches by digest after the multi-platform index it
pulled by tag. The rows stay (GraphQL keeps GitLab's names); the page groups a
digest row under the tag row it belongs to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.accounts.principal import Principal
from app.dependency_proxy.models import Manifest
from app.dependency_proxy.references import index_platforms
from app.groups.models import Group
from app.groups.policy import require_read


@dataclass(frozen=True)
class Relation:
    """A digest row's place: under `parent` (a tag row of the same image)."""

    parent: Manifest
    platform: str | None  # "linux/amd64" when it is one platform of the parent's index


def _is_digest(manifest: Manifest) -> bool:
    return manifest.reference.startswith("sha256:")


async def relate_manifests(
    principal: Principal, group: Group, manifests: Sequence[Manifest]
) -> list[tuple[Manifest, Relation | None]]:
    """`manifests` (newest first) with each digest row that belongs to a tag row among
    them moved right after it, and its relation."""
    await require_read(principal, group)
    relations = await _relations(group, manifests)
    children: dict[int, list[Manifest]] = {}
    for item in manifests:
        if item.id in relations:
            children.setdefault(relations[item.id].parent.id, []).append(item)
    ordered: list[tuple[Manifest, Relation | None]] = []
    for item in manifests:
        if item.id not in relations:
            ordered.append((item, None))
            ordered += [(child, relations[child.id]) for child in children.get(item.id, [])]
    return ordered


async def _relations(group: Group, manifests: Sequence[Manifest]) -> dict[int, Relation]:
    tagged = [item for item in manifests if not _is_digest(item)]
    same: dict[tuple[str, str], Manifest] = {}
    for item in reversed(tagged):  # the newest tag row wins
        same[(item.image_name, item.digest)] = item
    # Listings leave the bytes out; only the indexes on this page are read.
    indexes = {item.id: item for item in tagged if item.image_size is None}
    contents = await Manifest.filter(group_id=group.id, id__in=list(indexes)).values_list(
        "id", "content"
    )
    platforms: dict[tuple[str, str], Relation] = {}
    for index_id, content in contents:
        index = indexes[index_id]
        for digest, platform in index_platforms(bytes(content)).items():
            platforms.setdefault((index.image_name, digest), Relation(index, platform))
    relations: dict[int, Relation] = {}
    for item in manifests:
        if not _is_digest(item):
            continue
        key = (item.image_name, item.digest)
        if key in same:
            relations[item.id] = Relation(same[key], None)
        elif key in platforms:
            relations[item.id] = platforms[key]
    return relations
