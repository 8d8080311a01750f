"""Copy a single-machine instance's blobs from its data folder into an S3 bucket.

`dockyard storage migrate` runs this once when an instance moves to object
storage (docs/deploy.md). It is safe to stop and run again:

- a blob already in the bucket with the same size is skipped (Dockyard only
  ever makes an object visible after its digest was verified, so an object of
  the right size is the blob; `verify_existing` re-reads it to be sure);
- every copied blob is hashed while it is uploaded, and the upload completes
  only when the bytes are the digest its file name says; a damaged local file
  is reported, never uploaded, never changed;
- the source is only read: nothing in the data folder is deleted or moved.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from anyio import to_thread

from app.dependency_proxy.storage.s3 import S3BlobStore

_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class LocalBlob:
    digest: str
    path: Path
    size: int


@dataclass(frozen=True)
class BlobOutcome:
    blob: LocalBlob
    result: str  # "copied", "skipped", "failed"
    reason: str = ""


@dataclass
class MigrationReport:
    blobs: int = 0
    copied: int = 0
    skipped: int = 0
    bytes_copied: int = 0
    failures: list[BlobOutcome] = field(default_factory=list)
    #: Files under blobs/sha256 whose names are not digests (left alone).
    foreign: list[Path] = field(default_factory=list)


#: Called with each finished blob, and with (blob, bytes) as bytes go out.
OnBlob = Callable[[BlobOutcome], None]
OnBytes = Callable[[int], None]


def local_blobs(data_dir: Path, foreign: list[Path]) -> Iterator[LocalBlob]:
    """The committed blobs under `<data_dir>/blobs/sha256/ab/<hex>`, sorted (a rerun
    walks them in the same order). Spool files (downloads in progress) are not blobs."""
    root = data_dir / "blobs" / "sha256"
    if not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        if not folder.is_dir():
            foreign.append(folder)
            continue
        for path in sorted(folder.iterdir()):
            name = path.name
            if not (path.is_file() and _HEX.fullmatch(name) and name[:2] == folder.name):
                foreign.append(path)
                continue
            yield LocalBlob(f"sha256:{name}", path, path.stat().st_size)


async def _object_holds(store: S3BlobStore, blob: LocalBlob) -> bool:
    hasher = hashlib.sha256()
    async for chunk in store.open_range(blob.digest):
        hasher.update(chunk)
    return f"sha256:{hasher.hexdigest()}" == blob.digest


async def _upload(store: S3BlobStore, blob: LocalBlob, on_bytes: OnBytes) -> None:
    """Upload the file, completing only if its sha256 is the digest (else abort)."""
    key = store.key(blob.digest)
    hasher = hashlib.sha256()
    fd = os.open(blob.path, os.O_RDONLY)
    try:
        if blob.size <= store.part_size:
            data = await to_thread.run_sync(os.pread, fd, blob.size, 0)
            hasher.update(data)
            _check(hasher, blob, len(data))
            await store.put(key, data)
            on_bytes(len(data))
            return
        upload_id = await store.create_upload(key)
        try:
            parts = await _upload_parts(store, key, upload_id, fd, blob, hasher, on_bytes)
            _check(hasher, blob, sum(size for _, size in parts.values()))
            await store.complete_upload(key, upload_id, {n: etag for n, (etag, _) in parts.items()})
        except BaseException:
            await store.abort_upload(key, upload_id)
            raise
    finally:
        os.close(fd)


async def _upload_parts(
    store: S3BlobStore,
    key: str,
    upload_id: str,
    fd: int,
    blob: LocalBlob,
    hasher: hashlib._Hash,
    on_bytes: OnBytes,
) -> dict[int, tuple[str, int]]:
    """Read the file part by part (hashing in order) and upload up to the store's
    part slots at once: memory stays at a few parts whatever the blob's size."""
    parts: dict[int, tuple[str, int]] = {}
    tasks: list[asyncio.Task[None]] = []

    async def send(number: int, data: bytes) -> None:
        try:
            parts[number] = (await store.upload_part(key, upload_id, number, data), len(data))
            on_bytes(len(data))
        finally:
            store.part_slots.release()

    try:
        for number, offset in enumerate(range(0, blob.size, store.part_size), start=1):
            await store.part_slots.acquire()
            try:
                data = await to_thread.run_sync(os.pread, fd, store.part_size, offset)
            except BaseException:
                store.part_slots.release()
                raise
            hasher.update(data)
            tasks.append(asyncio.create_task(send(number, data)))
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return parts


class DamagedBlob(Exception):
    pass


def _check(hasher: hashlib._Hash, blob: LocalBlob, size: int) -> None:
    if size != blob.size:
        raise DamagedBlob(f"the file changed while it was read ({size} of {blob.size} bytes)")
    if f"sha256:{hasher.hexdigest()}" != blob.digest:
        raise DamagedBlob("its bytes are not its digest (the local file is damaged)")


async def migrate_blobs(
    data_dir: Path,
    store: S3BlobStore,
    *,
    verify_existing: bool = False,
    on_blob: OnBlob = lambda outcome: None,
    on_bytes: OnBytes = lambda size: None,
) -> MigrationReport:
    """Copy every local blob the bucket does not hold yet (see the module docstring)."""
    report = MigrationReport()
    for blob in local_blobs(data_dir, report.foreign):
        report.blobs += 1
        outcome = await _migrate_one(store, blob, verify_existing, on_bytes)
        if outcome.result == "copied":
            report.copied += 1
            report.bytes_copied += blob.size
        elif outcome.result == "skipped":
            report.skipped += 1
        else:
            report.failures.append(outcome)
        on_blob(outcome)
    return report


async def _migrate_one(
    store: S3BlobStore, blob: LocalBlob, verify_existing: bool, on_bytes: OnBytes
) -> BlobOutcome:
    try:
        present = await store.stat(blob.digest)
        if present == blob.size and (not verify_existing or await _object_holds(store, blob)):
            on_bytes(blob.size)
            return BlobOutcome(blob, "skipped")
        await _upload(store, blob, on_bytes)
    except DamagedBlob as error:
        return BlobOutcome(blob, "failed", str(error))
    except OSError as error:
        return BlobOutcome(blob, "failed", f"cannot read it: {error.strerror or error}")
    except Exception as error:  # the bucket refused or could not be reached
        return BlobOutcome(blob, "failed", f"upload failed: {type(error).__name__}: {error}")
    return BlobOutcome(blob, "copied")
