"""Blob storage and spool files are private (0600 files in 0700 folders) whatever the
process umask: cached layers may be a group's private images."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from app.dependency_proxy.downloads.spool import SpoolFileCoordinator
from app.dependency_proxy.storage import write_blob
from app.dependency_proxy.storage.local import LocalBlobStore

DATA = b"private layer bytes"
HEX = hashlib.sha256(DATA).hexdigest()
DIGEST = f"sha256:{HEX}"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_store_makes_its_folders_0700(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "data")
    for folder in ("data", "data/blobs", "data/blobs/sha256", "data/spool"):
        assert mode(tmp_path / folder) == 0o700, folder
    assert store.spool_dir == tmp_path / "data" / "spool"


async def test_a_written_blob_is_0600_in_0700_folders(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)

    async def chunks() -> AsyncIterator[bytes]:
        yield DATA

    await write_blob(store, DIGEST, chunks())
    path = store.path_for(DIGEST)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700


async def test_a_spool_its_sidecar_and_the_committed_blob_are_0600(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    spool = SpoolFileCoordinator(store.spool_dir).lead(HEX)
    assert spool is not None
    staging = store.stage(DIGEST, spool.file)
    await staging.write(DATA)
    spool.announce(len(DATA))
    part, meta = store.spool_dir / f"{HEX}.part", store.spool_dir / f"{HEX}.meta"
    assert (mode(part), mode(meta)) == (0o600, 0o600)
    await staging.commit()
    assert mode(store.path_for(DIGEST)) == 0o600
    assert mode(store.path_for(DIGEST).parent) == 0o700
    spool.release()
