"""The storage contract (`app/dependency_proxy/storage/__init__.py`), one suite for every
backend: the data folder, and S3 on a real SeaweedFS server."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.dependency_proxy.downloads.locks import create_private_locked
from app.dependency_proxy.errors import BlobUnknown, DigestMismatch
from app.dependency_proxy.storage import BlobStore, Removal, SpoolFile, Staging, write_blob
from app.dependency_proxy.storage.local import LocalBlobStore
from app.dependency_proxy.storage.s3 import S3BlobStore
from tests.support.fixtures import S3_BUCKET
from tests.support.seaweedfs import REGION, SeaweedS3

MIB = 1 << 20
# S3's smallest part (all but the last): the tests cross part boundaries with it.
PART = 5 * MIB
DATA = os.urandom(12 * MIB)  # three parts: 5 + 5 + 2 MiB
DIGEST = f"sha256:{hashlib.sha256(DATA).hexdigest()}"


def s3_store(seaweed: SeaweedS3, root: Path, prefix: str) -> S3BlobStore:
    return S3BlobStore(
        bucket=S3_BUCKET,
        spool_root=root,
        prefix=prefix,
        endpoint_url=seaweed.endpoint,
        region=REGION,
        part_size=PART,
        part_slots=2,
    )


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    made: BlobStore
    if request.param == "local":
        made = LocalBlobStore(tmp_path / "data")
    else:
        seaweed = request.getfixturevalue("s3_credentials")
        made = s3_store(seaweed, tmp_path / "data", f"contract-{secrets.token_hex(6)}/")
    await made.start()
    try:
        yield made
    finally:
        await made.aclose()


def new_spool(store: BlobStore) -> SpoolFile:
    fd, path = create_private_locked(store.spool_dir, "test")
    return SpoolFile(fd, path)


async def write_in_chunks(staging: Staging, data: bytes, chunk: int = MIB) -> None:
    for offset in range(0, len(data), chunk):
        await staging.write(data[offset : offset + chunk])


async def read(store: BlobStore, digest: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.open_range(digest, start, end)])


async def test_a_blob_is_visible_only_after_its_commit(store: BlobStore) -> None:
    spool = new_spool(store)
    staging = store.stage(DIGEST, spool)
    await write_in_chunks(staging, DATA)

    assert await store.stat(DIGEST) is None
    with pytest.raises(BlobUnknown):
        await read(store, DIGEST)

    assert await staging.commit() == len(DATA)
    assert await store.stat(DIGEST) == len(DATA)
    assert await read(store, DIGEST) == DATA
    os.close(spool.fd)


async def test_a_digest_mismatch_leaves_nothing_behind(store: BlobStore) -> None:
    spool = new_spool(store)
    staging = store.stage(DIGEST, spool)
    await write_in_chunks(staging, DATA[:-1] + b"!")

    with pytest.raises(DigestMismatch):
        await staging.commit()
    await staging.abort()

    assert await store.stat(DIGEST) is None
    # Nothing half-written is left in the store either: a sweep finds nothing.
    assert await store.sweep_incomplete(0) == 0
    os.close(spool.fd)


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, None), (0, 1), (PART - 1, PART + 1), (7 * MIB + 3, 12 * MIB), (12 * MIB - 1, None)],
)
async def test_range_reads_return_exactly_the_bytes_asked_for(
    store: BlobStore, start: int, end: int | None
) -> None:
    await write_blob(store, DIGEST, _chunks(DATA))
    assert await read(store, DIGEST, start, end) == DATA[start:end]


async def test_delete_and_remove_unused_say_whether_the_blob_was_there(store: BlobStore) -> None:
    other = b"another blob"
    other_digest = f"sha256:{hashlib.sha256(other).hexdigest()}"
    missing = "sha256:" + "0" * 64
    await write_blob(store, DIGEST, _chunks(DATA))
    await write_blob(store, other_digest, _chunks(other))

    assert await store.delete(other_digest) is True
    assert await store.delete(other_digest) is False
    outcome = await store.remove_unused([DIGEST, missing])

    assert outcome == {DIGEST: Removal.REMOVED, missing: Removal.MISSING}
    assert await store.stat(DIGEST) is None


async def test_an_abandoned_upload_is_swept_by_the_next_process_but_not_while_live(
    store: BlobStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    spool = new_spool(store)
    staging = store.stage(DIGEST, spool)
    await write_in_chunks(staging, DATA[: 2 * PART + MIB])  # parts on their way, no commit
    await asyncio.sleep(0.5)  # let the part uploads land

    # Its own process never sweeps an upload it is still writing.
    assert await store.sweep_incomplete(0) == 0
    if isinstance(store, S3BlobStore):
        assert len(await store.incomplete_uploads()) == 1
        # The writer "died": a process started later sweeps what it left.
        later = s3_store(request.getfixturevalue("s3_credentials"), tmp_path / "b", store.prefix)
        await later.start()
        try:
            assert await later.sweep_incomplete(3600) == 0  # too young yet
            assert await later.sweep_incomplete(0) == 1
            assert await later.incomplete_uploads() == []
        finally:
            await later.aclose()
    assert await store.stat(DIGEST) is None
    await staging.abort()
    os.close(spool.fd)


async def test_concurrent_writers_of_one_digest_both_commit_the_same_bytes(
    store: BlobStore,
) -> None:
    spools = [new_spool(store), new_spool(store)]
    stagings = [store.stage(DIGEST, spool) for spool in spools]
    for offset in range(0, len(DATA), 3 * MIB):  # interleaved, part by part
        for staging in stagings:
            await staging.write(DATA[offset : offset + 3 * MIB])

    sizes = await asyncio.gather(*(staging.commit() for staging in stagings))

    assert sizes == [len(DATA), len(DATA)]
    assert await store.stat(DIGEST) == len(DATA)
    assert await read(store, DIGEST) == DATA
    assert await store.sweep_incomplete(0) == 0
    for spool in spools:
        os.close(spool.fd)


async def test_a_large_blob_goes_in_and_out_with_bounded_memory(store: BlobStore) -> None:
    size = 96 * MIB
    block = os.urandom(MIB)
    hasher = hashlib.sha256()
    for index in range(size // MIB):
        hasher.update(block[index:] + block[:index])
    digest = f"sha256:{hasher.hexdigest()}"

    async def generated() -> AsyncIterator[bytes]:
        for index in range(size // MIB):
            yield block[index:] + block[:index]

    tracemalloc.start()
    try:
        assert await write_blob(store, digest, generated()) == size
        _, peak_in = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        check = hashlib.sha256()
        async for chunk in store.open_range(digest):
            check.update(chunk)
        _, peak_out = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert check.hexdigest() == digest.removeprefix("sha256:")
    # Parts in flight (2 x 5 MiB here) plus a few chunks: never the blob.
    assert peak_in < 24 * MIB, peak_in
    assert peak_out < 8 * MIB, peak_out


async def _chunks(data: bytes, size: int = MIB) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]
