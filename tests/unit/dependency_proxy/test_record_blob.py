import asyncio

import pytest
from tortoise.exceptions import IntegrityError

from app import clock
from app.dependency_proxy.cache_totals import totals_of
from app.dependency_proxy.models import Blob, CacheStatus, Manifest
from app.dependency_proxy.rows import ManifestValues, record_blob, store_manifest
from app.groups import records as groups
from tests.support.cache_rows import digest_of

pytestmark = pytest.mark.usefixtures("database")


def manifest(digest: str, content: bytes) -> ManifestValues:
    return ManifestValues(
        file_name="library/alpine:3.19.json",
        image_name="library/alpine",
        reference="3.19",
        digest=digest,
        content_type="application/vnd.oci.image.manifest.v1+json",
        content=content,
        image_size=None,
    )


async def test_concurrent_recordings_of_one_blob_make_one_row() -> None:
    group = await groups.create_group("acme")
    digest = digest_of("layer")
    await asyncio.gather(*(record_blob(group.id, digest, 10) for _ in range(5)))
    assert await Blob.filter(group_id=group.id, digest=digest).count() == 1


async def test_the_database_refuses_a_second_live_blob_row_whoever_writes_it() -> None:
    group = await groups.create_group("acme")
    digest = digest_of("layer")
    await record_blob(group.id, digest, 10)
    with pytest.raises(IntegrityError):
        await Blob.create(group_id=group.id, digest=digest, size=10, read_at=clock.now())
    # A row on its way out does not block a fresh live one.
    await Blob.filter(group_id=group.id, digest=digest).update(
        status=CacheStatus.PENDING_DESTRUCTION
    )
    await record_blob(group.id, digest, 10)
    statuses = await Blob.filter(group_id=group.id, digest=digest).values_list("status", flat=True)
    assert sorted(statuses) == [CacheStatus.DEFAULT, CacheStatus.PENDING_DESTRUCTION]


async def test_concurrent_stores_of_one_tag_keep_one_live_row_with_the_last_fetch() -> None:
    group = await groups.create_group("acme")
    first = await store_manifest(group.id, manifest(digest_of("one"), b'{"n": 1}'))
    await asyncio.gather(
        *(store_manifest(group.id, manifest(digest_of(f"m{n}"), b"{}")) for n in range(5))
    )
    last = await store_manifest(group.id, manifest(digest_of("two"), b'{"n": 22}'))
    rows = await Manifest.filter(group_id=group.id)
    assert [row.id for row in rows] == [first.id] == [last.id]
    assert rows[0].digest == digest_of("two") and bytes(rows[0].content) == b'{"n": 22}'
    assert rows[0].size == len(b'{"n": 22}')
    totals = await totals_of(group.id)  # kept by the triggers through the upserts
    assert (totals.manifest_count, totals.manifest_bytes) == (1, len(b'{"n": 22}'))
