"""`BlobStore` on a local (or shared POSIX) filesystem: the embedded default.

Blobs live at `<data dir>/blobs/sha256/<first two hex>/<hex>`, 0600 in 0700
folders. A staging is the download's own spool file: `commit` checks the
sha256, fsyncs and renames it into place (same filesystem, atomic), so a reader
never sees a half-written blob under its final name. The writer keeps its
`flock` on the file after the rename until its row is recorded; cleanup's
`remove_unused` leaves a locked file alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from anyio import to_thread

from app.config import PRIVATE_DIR_MODE
from app.dependency_proxy.downloads.locks import remove_unlocked
from app.dependency_proxy.errors import BlobUnknown, DigestMismatch
from app.dependency_proxy.storage import (
    CHUNK_SIZE,
    Removal,
    SpoolFile,
    Writing,
    blob_key,
    digest_hex,
    write_and_hash,
)


class LocalStaging:
    def __init__(self, store: LocalBlobStore, digest: str, spool: SpoolFile) -> None:
        self._store = store
        self._digest = digest
        self._hex = digest_hex(digest)
        self._spool = spool
        self._hasher = hashlib.sha256()
        self.size = 0

    async def write(self, data: bytes) -> None:
        await to_thread.run_sync(write_and_hash, self._spool.fd, data, self._hasher)
        self.size += len(data)

    async def commit(self) -> int:
        if self._hasher.hexdigest() != self._hex:
            raise DigestMismatch(f"the bytes written are not {self._digest}")
        await to_thread.run_sync(os.fsync, self._spool.fd)
        await to_thread.run_sync(self._store.install, self._spool.path, self._digest)
        return self.size

    async def abort(self) -> None:
        """Nothing reached the store: the spool file is its downloader's to remove."""


class LocalBlobStore:
    kind = "local"
    keeps_files = True

    def __init__(self, root: Path, *, chunk_size: int = CHUNK_SIZE) -> None:
        self.root = root
        self.chunk_size = chunk_size
        private_dirs(root / "blobs" / "sha256")
        private_dirs(self.spool_dir)

    @property
    def spool_dir(self) -> Path:
        return self.root / "spool"

    async def start(self) -> None:
        """Nothing to connect to."""

    async def aclose(self) -> None:
        """Nothing to close."""

    def path_for(self, digest: str) -> Path:
        """Where the blob lives once committed, whether or not it does yet."""
        return self.root / blob_key(digest)

    def stage(self, digest: str, spool: SpoolFile) -> LocalStaging:
        return LocalStaging(self, digest, spool)

    def local_path(self, digest: str) -> Path | None:
        path = self.path_for(digest)
        return path if path.is_file() else None

    async def stat(self, digest: str) -> int | None:
        try:
            return self.path_for(digest).stat().st_size
        except FileNotFoundError:
            return None

    async def presigned_url(self, digest: str) -> str | None:
        return None

    async def check(self) -> None:
        """The data folder is checked by readiness itself."""

    async def sweep_incomplete(
        self,
        older_than_seconds: float,
        *,
        digest: str | None = None,
        writing: Writing | None = None,
    ) -> int:
        """A dead writer leaves only spool files, which the download coordinator sweeps."""
        return 0

    async def delete(self, digest: str) -> bool:
        try:
            self.path_for(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    async def remove_unused(self, digests: Sequence[str]) -> dict[str, Removal]:
        """Remove each blob's file unless a download still holds it (cleanup).

        A download keeps its file locked from the spool until its row is
        recorded; a file found locked is left for a later pass. One open, lock
        and unlink per file, in a worker thread: the event loop keeps serving.
        """
        return await to_thread.run_sync(self._remove_unused, list(digests))

    def _remove_unused(self, digests: list[str]) -> dict[str, Removal]:
        removed = {}
        for digest in digests:
            try:
                removed[digest] = remove_unlocked(str(self.path_for(digest)))
            except OSError:
                removed[digest] = Removal.FAILED
        return removed

    def install(self, source: Path, digest: str) -> Path:
        """Atomically move a verified spool file into place (blocking: call in a thread)."""
        target = self.path_for(digest)
        private_dirs(target.parent)
        os.replace(source, target)
        # Make the rename itself durable, not just the bytes.
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return target

    async def open_range(
        self, digest: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        try:
            fd = os.open(self.path_for(digest), os.O_RDONLY)
        except FileNotFoundError:
            raise BlobUnknown(f"blob {digest} is not stored") from None
        try:
            stop = os.fstat(fd).st_size if end is None else end
            offset = start
            while offset < stop:
                data = await to_thread.run_sync(
                    os.pread, fd, min(self.chunk_size, stop - offset), offset
                )
                if not data:
                    break
                offset += len(data)
                yield data
        finally:
            os.close(fd)


def private_dirs(path: Path) -> None:
    """`mkdir -p` with every new level 0700 (pathlib gives parents the default mode)."""
    if path.is_dir():
        return
    private_dirs(path.parent)
    with contextlib.suppress(FileExistsError):  # another process made it first
        path.mkdir(mode=PRIVATE_DIR_MODE)
