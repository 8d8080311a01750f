"""Recording what a group's cache holds: one live row per (group, digest) for blobs and
per (group, file name) for manifests, kept by the database.

Partial unique indexes on live rows (status DEFAULT; migration
`0007_download_leases`) make a second live row impossible, whoever writes it:
two worker processes, two instances, or a download's commit and its own client
recording at the same moment. Writers therefore insert with `ON CONFLICT … DO
NOTHING` (a blob: the bytes are the same) or `DO UPDATE` (a manifest fetched
again: the newer fetch wins), never read-then-insert. Rows on their way out
(marked, processing, error) are not live and do not block a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass

from app import clock
from app.dependency_proxy import sql
from app.dependency_proxy.models import CacheStatus, Manifest

LIVE = int(CacheStatus.DEFAULT)


async def record_blob(group_id: int, digest: str, size: int) -> None:
    """Record that the group holds the blob (a no-op when a live row exists)."""
    now = clock.now()
    await sql.execute(
        "INSERT INTO dependency_proxy_blobs"
        " (group_id, digest, size, status, read_at, created_at, updated_at)"
        f" VALUES ($1, $2, $3, {LIVE}, $4, $4, $4)"
        f" ON CONFLICT (group_id, digest) WHERE status = {LIVE} DO NOTHING",
        group_id,
        digest,
        size,
        now,
    )


@dataclass(frozen=True)
class ManifestValues:
    file_name: str
    image_name: str
    reference: str
    digest: str
    content_type: str
    content: bytes
    image_size: int | None


async def store_manifest(group_id: int, values: ManifestValues) -> Manifest:
    """Insert the group's live row for `values.file_name`, or overwrite the live one
    (a pinned tag stays pinned when it is fetched again)."""
    now = clock.now()
    rows = await sql.fetch(
        "INSERT INTO dependency_proxy_manifests"
        " (group_id, file_name, image_name, reference, digest, content_type, size,"
        "  image_size, content, status, pinned, read_at, checked_at, created_at, updated_at)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, {LIVE}, FALSE, $10, $10, $10, $10)"
        f" ON CONFLICT (group_id, file_name) WHERE status = {LIVE} DO UPDATE SET"
        " digest = excluded.digest, content_type = excluded.content_type,"
        " size = excluded.size, image_size = excluded.image_size,"
        " content = excluded.content, read_at = excluded.read_at,"
        " checked_at = excluded.checked_at, updated_at = excluded.updated_at"
        " RETURNING id",
        group_id,
        values.file_name,
        values.image_name,
        values.reference,
        values.digest,
        values.content_type,
        len(values.content),
        values.image_size,
        values.content,
        now,
    )
    return await Manifest.get(id=rows[0]["id"])
