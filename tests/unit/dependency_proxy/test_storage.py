from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.dependency_proxy.downloads.locks import create_locked, is_locked
from app.dependency_proxy.errors import BlobUnknown, DigestMismatch, InvalidReference
from app.dependency_proxy.storage import Removal, write_blob
from app.dependency_proxy.storage.local import LocalBlobStore

DATA = bytes(range(256)) * 1000
DIGEST = f"sha256:{hashlib.sha256(DATA).hexdigest()}"


async def chunked(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def leftovers(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path, chunk_size=10_000)


async def test_written_blob_is_content_addressed_and_read_back(store: LocalBlobStore) -> None:
    assert await write_blob(store, DIGEST, chunked(DATA)) == len(DATA)

    hex_digest = DIGEST.removeprefix("sha256:")
    expected = store.root / "blobs" / "sha256" / hex_digest[:2] / hex_digest
    assert store.local_path(DIGEST) == expected
    assert expected.read_bytes() == DATA
    assert await store.stat(DIGEST) is not None
    assert await store.stat(DIGEST) == len(DATA)
    assert await collect(store.open_range(DIGEST)) == DATA
    assert list(store.spool_dir.iterdir()) == []


async def test_open_reads_a_range_in_chunks(store: LocalBlobStore) -> None:
    await write_blob(store, DIGEST, chunked(DATA))

    chunks = [chunk async for chunk in store.open_range(DIGEST, start=5, end=25_005)]

    assert [len(chunk) for chunk in chunks] == [10_000, 10_000, 5_000]
    assert b"".join(chunks) == DATA[5:25_005]


async def test_mismatching_bytes_leave_nothing_behind(store: LocalBlobStore) -> None:
    with pytest.raises(DigestMismatch):
        await write_blob(store, DIGEST, chunked(DATA[:-1] + b"!"))

    assert await store.stat(DIGEST) is None
    assert leftovers(store.root) == []


async def test_broken_stream_leaves_nothing_behind(store: LocalBlobStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield DATA[:100]
        raise ConnectionError("cut")

    with pytest.raises(ConnectionError):
        await write_blob(store, DIGEST, broken())

    assert leftovers(store.root) == []


async def test_missing_blob(store: LocalBlobStore) -> None:
    assert await store.stat(DIGEST) is None
    assert await store.stat(DIGEST) is None
    assert store.local_path(DIGEST) is None
    with pytest.raises(BlobUnknown):
        await collect(store.open_range(DIGEST))


async def test_delete_is_idempotent_and_says_whether_the_file_was_there(
    store: LocalBlobStore,
) -> None:
    await write_blob(store, DIGEST, chunked(DATA))

    assert await store.delete(DIGEST) is True
    assert await store.delete(DIGEST) is False

    assert await store.stat(DIGEST) is None


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:../../../../etc/passwd",
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 64 + "\n",
        "sha512:" + "a" * 64,
        "a" * 64,
        "",
    ],
)
async def test_only_strict_sha256_digests_build_paths(store: LocalBlobStore, digest: str) -> None:
    with pytest.raises(InvalidReference):
        store.path_for(digest)
    with pytest.raises(InvalidReference):
        await store.stat(digest)
    with pytest.raises(InvalidReference):
        await write_blob(store, digest, chunked(b""))


def test_locked_file_is_created_once_and_never_visible_unlocked(tmp_path: Path) -> None:
    path = tmp_path / "x.part"

    fd = create_locked(path)
    assert fd is not None
    try:
        assert create_locked(path) is None
        assert is_locked(path)
    finally:
        os.close(fd)
    assert not is_locked(path)
    assert [p.name for p in tmp_path.iterdir()] == ["x.part"]


async def test_remove_unused_leaves_a_file_a_download_still_holds(store: LocalBlobStore) -> None:
    await write_blob(store, DIGEST, chunked(DATA))
    other = "sha256:" + hashlib.sha256(b"other").hexdigest()
    await write_blob(store, other, chunked(b"other"))
    missing = "sha256:" + "0" * 64
    # A download that committed its file but has not recorded its row holds the lock.
    fd = os.open(store.path_for(other), os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        outcome = await store.remove_unused([DIGEST, other, missing])
    finally:
        os.close(fd)
    assert outcome == {DIGEST: Removal.REMOVED, other: Removal.IN_USE, missing: Removal.MISSING}
    assert await store.stat(DIGEST) is None
    assert await store.stat(other) is not None
