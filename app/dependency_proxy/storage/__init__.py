"""The storage contract: where verified blobs are kept, addressed by digest.

Blobs are content-addressed (`blobs/sha256/<first two hex>/<hex>`, under the
store's root or the bucket's prefix). A key is only ever built from a digest
that passed `digest_hex`, so a client cannot steer a path or key anywhere else.

The contract is what its callers need, nothing more:

- a download writes through a `Staging` (`BlobStore.stage`): bytes go in as they
  arrive, and the blob becomes visible under its key only at `commit`, which
  checks the sha256 first. A mismatch, or `abort`, leaves nothing visible.
  Writers of the same digest may race: they commit identical bytes, so the last
  one wins harmlessly; exclusivity is never asked of the store.
- a cached read asks `stat` (the committed size, or None) and then either sends
  `local_path` (a file on this machine: zero-copy, Range by the HTTP server),
  redirects to `presigned_url` (object storage in redirect mode), or streams
  `open_range` (any byte range, bounded memory).
- cleanup calls `remove_unused` (a batch; a blob still held by a committing
  download on this machine is left alone) and `sweep_incomplete` (what crashed
  writers left in the store; with several instances, the download leases say
  which writers are alive).
- a follower on another instance (scale-out) needs only `stat` and `open_range`
  of a committed blob; the growing spool is served by the downloading instance.

`LocalBlobStore` (storage/local.py) keeps blobs in the data folder;
`S3BlobStore` (storage/s3.py) in an S3-compatible bucket. `open_store` picks
one from the settings. Both pass tests/unit/dependency_proxy/test_storage_contract.py.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from app.dependency_proxy.errors import InvalidReference

if TYPE_CHECKING:
    from app.config import Settings

CHUNK_SIZE = 1 << 20
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")


def digest_hex(digest: str) -> str:
    """The 64 hex characters of a `sha256:` digest; InvalidReference for anything else."""
    match = _DIGEST.fullmatch(digest) if isinstance(digest, str) else None
    if match is None:
        raise InvalidReference("invalid blob digest", part="digest")
    return match.group(1)


def blob_key(digest: str) -> str:
    """The blob's content address relative to the store's root or prefix."""
    hex_digest = digest_hex(digest)
    return f"blobs/sha256/{hex_digest[:2]}/{hex_digest}"


class Removal(Enum):
    REMOVED = "removed"
    MISSING = "missing"  # nothing to remove
    IN_USE = "in use"  # a download holds it
    FAILED = "failed"


@dataclass(frozen=True)
class SpoolFile:
    """The local file a download is written into (it stays the downloader's: other
    readers on this machine tail it while it grows). `fd` is open for reading and
    writing; `path` is its name in the spool folder."""

    fd: int
    path: Path


#: Which of these digests have a live writer somewhere (any instance).
Writing = Callable[[set[str]], Awaitable[set[str]]]


class Staging(Protocol):
    """One blob on its way into the store."""

    @property
    def size(self) -> int:
        """Bytes written so far."""
        ...

    async def write(self, data: bytes) -> None:
        """Append `data` (to the spool file, and on to the store as it sees fit)."""
        ...

    async def commit(self) -> int:
        """Make the blob visible under its key if the bytes written are its digest;
        returns the size. DigestMismatch (or any error) leaves nothing visible."""
        ...

    async def abort(self) -> None:
        """Give up: nothing written becomes visible, nothing is left in the store.
        Safe to call more than once, and after a failed commit."""
        ...


class BlobStore(Protocol):
    """Where verified blobs are kept, addressed by `sha256:<hex>` digest."""

    #: "local" or "s3" (logs, readiness).
    kind: str
    #: Whether `local_path` answers for every committed blob (so None means "not
    #: stored" and no other look is needed).
    keeps_files: bool

    @property
    def spool_dir(self) -> Path:
        """The local folder for spool files (downloads in progress on this machine)."""
        ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    def stage(self, digest: str, spool: SpoolFile) -> Staging:
        """Begin writing the blob through `spool`."""
        ...

    async def stat(self, digest: str) -> int | None:
        """The size of the committed blob, or None if it is not stored."""
        ...

    def open_range(
        self, digest: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Bytes `[start, end)` of a committed blob (end None: to its end), in large
        chunks; BlobUnknown if it is not stored."""
        ...

    def local_path(self, digest: str) -> Path | None:
        """A committed blob's file on this machine, if the store keeps one."""
        ...

    async def presigned_url(self, digest: str) -> str | None:
        """A short-lived URL a client may fetch the blob from directly, if the store
        offers one (object storage in redirect mode)."""
        ...

    async def remove_unused(self, digests: Sequence[str]) -> dict[str, Removal]:
        """Remove each committed blob unless a download on this machine still holds it."""
        ...

    async def delete(self, digest: str) -> bool:
        """Remove the blob; True if it was there."""
        ...

    async def sweep_incomplete(
        self,
        older_than_seconds: float,
        *,
        digest: str | None = None,
        writing: Writing | None = None,
    ) -> int:
        """Remove what writers that died left in the store (older than the age given;
        only the blob `digest`'s if given); how many were removed. `writing` names
        the digests whose writers are alive on any instance (download leases): their
        uploads stay whatever their age."""
        ...

    async def check(self) -> None:
        """Raise if the store cannot be reached (readiness)."""
        ...


def write_and_hash(fd: int, data: bytes, hasher: hashlib._Hash) -> None:
    """Write all of `data` and feed it to `hasher` (blocking: call in a thread)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    hasher.update(data)


async def write_blob(store: BlobStore, digest: str, chunks: AsyncIterable[bytes]) -> int:
    """Store the bytes if their sha256 is `digest` (tools and tests; downloads use the
    download coordinator). DigestMismatch leaves nothing behind."""
    from app.dependency_proxy.downloads.locks import create_private_locked

    fd, path = create_private_locked(store.spool_dir, digest_hex(digest))
    staging = store.stage(digest, SpoolFile(fd, path))
    try:
        async for chunk in chunks:
            await staging.write(chunk)
        return await staging.commit()
    except BaseException:
        await staging.abort()
        raise
    finally:
        path.unlink(missing_ok=True)  # gone already when the local store renamed it
        os.close(fd)


def open_store(settings: Settings) -> BlobStore:
    """The store the settings ask for: S3 when a bucket is set, else the data folder."""
    if settings.s3_bucket:
        from app.dependency_proxy.storage.s3 import S3BlobStore

        return S3BlobStore.from_settings(settings)
    from app.dependency_proxy.storage.local import LocalBlobStore

    return LocalBlobStore(settings.data_dir)
