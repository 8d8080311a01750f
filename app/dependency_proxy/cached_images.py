"""One cached image of a group: naming it, finding its rows, and what it holds.

An image is named as users pull it: `alpine` (meaning `alpine:latest`),
`alpine:3.19` or `alpine@sha256:…`. GitLab keeps a row per pulled reference,
so a name can match several rows (a digest names every cached reference of
that image with that digest). Only live rows count: a row already marked for
deletion is on its way out.

What an image's rows hold is read from their manifests: the blobs a
single-platform manifest names, the platform manifests an index lists. The
services that delete or pin an image (`services/delete_manifest.py`,
`services/pin_manifest.py`) and the TTL expiry (`pins.py`) use these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tortoise.transactions import in_transaction

from app import clock
from app.accounts.principal import Principal
from app.dependency_proxy import sql
from app.dependency_proxy.clearing import MARKABLE
from app.dependency_proxy.errors import InvalidReference
from app.dependency_proxy.models import Blob, CacheStatus, Manifest
from app.dependency_proxy.references import (
    blob_digests,
    index_platforms,
    manifest_file_name,
    validate_digest,
    validate_image,
    validate_manifest_reference,
)
from app.errors import NotFound
from app.groups.models import Group
from app.groups.policy import require_administer

# The rows a clear would mark: those not already on their way out.
LIVE = MARKABLE
# Rows read per query when looking for the blobs the rest of a group still uses.
SCAN_ROWS = 500


@dataclass(frozen=True)
class ImageName:
    """`image:tag` or `image@digest`, checked against the OCI grammar."""

    image: str
    reference: str

    @property
    def by_digest(self) -> bool:
        return self.reference.startswith("sha256:")

    def __str__(self) -> str:
        return f"{self.image}{'@' if self.by_digest else ':'}{self.reference}"

    @classmethod
    def parse(cls, text: str) -> ImageName:
        """`alpine`, `alpine:3.19`, `library/alpine@sha256:…`; InvalidReference otherwise."""
        text = text.strip()
        image, at, digest = text.partition("@")
        if at:
            return cls(validate_image(image), validate_digest(digest))
        slash = image.rfind("/")
        colon = image.rfind(":")
        if colon > slash:
            image, tag = image[:colon], image[colon + 1 :]
            return cls(validate_image(image), validate_manifest_reference(tag))
        return cls(validate_image(image), "latest")


@dataclass(frozen=True)
class ManifestRef:
    """Which cached image: a manifest row's id, or a name in a group.

    With an id, `group_id` (when given) must be the row's group: a page names
    the group in its address and the row in its form, and both must agree."""

    manifest_id: int | None = None
    group_id: int | None = None
    name: ImageName | None = None

    def __post_init__(self) -> None:
        if (self.manifest_id is None) == (self.name is None):
            raise InvalidReference("name a cached image by its id or by its name")
        if self.name is not None and self.group_id is None:
            raise InvalidReference("a cached image's name needs its group")


async def rows_of(ref: ManifestRef) -> list[Manifest]:
    """The live rows `ref` names (empty when there are none)."""
    live = Manifest.filter(status__in=LIVE)
    if ref.manifest_id is not None:
        row = await live.filter(id=ref.manifest_id).first()
        if row is None or (ref.group_id is not None and row.group_id != ref.group_id):  # type: ignore[attr-defined]
            return []
        return [row]
    assert ref.name is not None
    rows = live.filter(group_id=ref.group_id, image_name=ref.name.image)
    if ref.name.by_digest:
        return list(await rows.filter(digest=ref.name.reference).order_by("id"))
    file_name = manifest_file_name(ref.name.image, ref.name.reference)
    return list(await rows.filter(file_name=file_name).order_by("id"))


def name_of(row: Manifest) -> str:
    by_digest = row.reference.startswith("sha256:")
    return f"{row.image_name}{'@' if by_digest else ':'}{row.reference}"


def is_index(row: Manifest) -> bool:
    return bool(index_platforms(bytes(row.content)))


async def platform_rows(group_id: int, rows: Iterable[Manifest]) -> list[Manifest]:
    """The group's live rows of the platform manifests the indexes among `rows` list
    (same image, pulled by digest after the index, as clients do)."""
    wanted: dict[str, set[str]] = {}
    for row in rows:
        for digest in index_platforms(bytes(row.content)):
            wanted.setdefault(row.image_name, set()).add(digest)
    found: list[Manifest] = []
    for image, digests in wanted.items():
        found += await Manifest.filter(
            group_id=group_id, image_name=image, digest__in=sorted(digests), status__in=LIVE
        ).order_by("id")
    return found


async def blobs_in_use(group_id: int, digests: set[str], *, skip: set[int]) -> set[str]:
    """Which of `digests` a live manifest of the group (other than the ids in `skip`)
    still names. Reads the group's single-platform manifests page by page on the
    `(group_id, id)` index; indexes name no blobs and are not read."""
    used: set[str] = set()
    after = 0
    while digests - used:
        page = await (
            Manifest.filter(
                group_id=group_id, id__gt=after, status__in=LIVE, image_size__isnull=False
            )
            .order_by("id")
            .limit(SCAN_ROWS)
            .values_list("id", "content")
        )
        for ident, content in page:
            if ident not in skip:
                used |= blob_digests(bytes(content)) & digests
        if len(page) < SCAN_ROWS:
            break
        after = int(page[-1][0])
    return used


async def release_blobs(group_id: int, digests: set[str]) -> int:
    """Mark the group's live rows of `digests` for deletion; how many.

    Only the group's rows: the cleanup worker then deletes a row, and removes
    the file only when no row of any group still references the digest and no
    download of it is in flight (`cleanup.py`), as after a clear."""
    if not digests:
        return 0
    listed = sorted(digests)
    table = Blob._meta.db_table
    return await sql.retry_busy(
        lambda: sql.changed(
            f"UPDATE {table} SET status = $1, updated_at = $2"
            f" WHERE group_id = $3 AND status IN ($4, $5) AND digest IN ({sql.in_list(listed, 6)})",
            int(CacheStatus.PENDING_DESTRUCTION),
            clock.now(),
            group_id,
            *(int(status) for status in LIVE),
            *listed,
        ),
        "releasing an image's blobs",
    )


async def remove_rows(group_id: int, rows: Iterable[Manifest], *, keep: Iterable[str] = ()) -> int:
    """Delete a group's manifest rows and release the blobs they name that no other
    live manifest of the group names (nor `keep`); how many blob rows were released.

    Deleting one image and evicting images both come here."""
    rows = list(rows)
    ids = {row.id for row in rows}
    named: set[str] = set()
    for row in rows:
        named |= blob_digests(bytes(row.content))
    async with in_transaction():
        await Manifest.filter(id__in=sorted(ids)).delete()
    # After the rows are gone: a manifest pulled meanwhile that names a blob
    # is seen here and keeps it (a pull never uses a marked row anyway).
    in_use = await blobs_in_use(group_id, named, skip=ids)
    return await release_blobs(group_id, named - in_use - set(keep))


async def owned_rows(principal: Principal, ref: ManifestRef) -> tuple[Group, list[Manifest]]:
    """The group and live rows `ref` names, for an Owner of that group.

    One NotFound for a missing image and for a group one may not read, so an
    id never tells whether another group's image exists."""
    rows = await rows_of(ref)
    group_id = rows[0].group_id if rows else ref.group_id  # type: ignore[attr-defined]
    group = await Group.get_or_none(id=group_id) if group_id is not None else None
    if group is None:
        raise NotFound("no such cached image")
    await require_administer(principal, group, "delete or pin its cached images")
    if not rows:
        what = f" {ref.name}" if ref.name is not None else ""
        raise NotFound(f"no cached image{what} in {group.full_path}")
    return group, rows
