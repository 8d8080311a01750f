"""Cache rows written straight into the database, for tests of what reads them
(GraphQL, services, cleanup) without a pull. Pulls themselves are tested for real in e2e."""

from __future__ import annotations

import hashlib

from app import clock
from app.dependency_proxy.models import Blob, Manifest
from app.groups.models import Group


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


async def add_manifest(group: Group, image: str, tag: str, size: int = 500) -> Manifest:
    now = clock.now()
    return await Manifest.create(
        group_id=group.id,
        file_name=f"{image}:{tag}.json",
        image_name=image,
        reference=tag,
        digest=digest_of(f"{group.id}/{image}:{tag}"),
        content_type="application/vnd.oci.image.manifest.v1+json",
        size=size,
        content=b"{}",
        read_at=now,
        checked_at=now,
    )


async def add_blob(group: Group, seed: str, size: int = 1000) -> Blob:
    return await Blob.create(
        group_id=group.id, digest=digest_of(seed), size=size, read_at=clock.now()
    )
