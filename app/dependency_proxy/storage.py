"""Content-addressed blob storage, and the spool files that feed it.

Blobs live at `blobs/sha256/<first two hex>/<hex>` under the store's root. A
path is only ever built from a digest that passed `digest_hex`, so a client
cannot steer a path anywhere else. Files reach the store by an atomic rename
from `spool/` (same filesystem) after their sha256 was checked: a reader
never sees a half-written blob under its final name.

Files being written in `spool/` are held under an exclusive `flock` by their
writer for as long as they exist; the lock is the liveness signal other
processes use (`is_locked`, `remove_if_unlocked`). A backend for object
storage implements the same `BlobStore` contract; `local_path` then returns
None and the HTTP layer streams `open()` instead of using a file response.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from enum import Enum
from pathlib import Path
from typing import Protocol

from anyio import to_thread

from app.config import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE
from app.dependency_proxy.errors import BlobUnknown, DigestMismatch, InvalidReference

CHUNK_SIZE = 1 << 20
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")


def digest_hex(digest: str) -> str:
    """The 64 hex characters of a `sha256:` digest; InvalidReference for anything else."""
    match = _DIGEST.fullmatch(digest) if isinstance(digest, str) else None
    if match is None:
        raise InvalidReference("invalid blob digest", part="digest")
    return match.group(1)


class BlobStore(Protocol):
    """Where verified blobs are kept, addressed by `sha256:<hex>` digest."""

    async def exists(self, digest: str) -> bool: ...

    async def size(self, digest: str) -> int | None: ...

    async def delete(self, digest: str) -> bool:
        """Remove the blob; True if it was there."""
        ...

    async def write(self, digest: str, chunks: AsyncIterable[bytes]) -> int: ...

    def open(self, digest: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]: ...

    def local_path(self, digest: str) -> Path | None: ...


class LocalBlobStore:
    """A `BlobStore` on a local (or shared POSIX) filesystem."""

    def __init__(self, root: Path, *, chunk_size: int = CHUNK_SIZE) -> None:
        self.root = root
        self.chunk_size = chunk_size
        private_dirs(root / "blobs" / "sha256")
        private_dirs(self.spool_dir)

    @property
    def spool_dir(self) -> Path:
        return self.root / "spool"

    def path_for(self, digest: str) -> Path:
        """Where the blob lives once committed, whether or not it does yet."""
        hex_digest = digest_hex(digest)
        return self.root / "blobs" / "sha256" / hex_digest[:2] / hex_digest

    def local_path(self, digest: str) -> Path | None:
        path = self.path_for(digest)
        return path if path.is_file() else None

    async def exists(self, digest: str) -> bool:
        return self.local_path(digest) is not None

    async def size(self, digest: str) -> int | None:
        try:
            return self.path_for(digest).stat().st_size
        except FileNotFoundError:
            return None

    async def delete(self, digest: str) -> bool:
        try:
            self.path_for(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    async def write(self, digest: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the bytes if their sha256 is `digest`; DigestMismatch leaves nothing behind."""
        hex_digest = digest_hex(digest)
        fd, temp = create_private_locked(self.spool_dir, hex_digest)
        hasher = hashlib.sha256()
        size = 0
        try:
            async for chunk in chunks:
                await to_thread.run_sync(write_and_hash, fd, chunk, hasher)
                size += len(chunk)
            if hasher.hexdigest() != hex_digest:
                raise DigestMismatch(f"the bytes written do not match {digest}")
            await to_thread.run_sync(os.fsync, fd)
            await to_thread.run_sync(self.install, temp, digest)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
        return size

    async def remove_unused(self, digests: Sequence[str]) -> dict[str, Removal]:
        """Remove each blob's file unless a download still holds it (cleanup).

        A download keeps its file locked from the spool until its row is
        recorded; a file found locked is left for a later pass. One open, lock
        and unlink per file, in a worker thread: the event loop keeps serving.
        """
        return await to_thread.run_sync(self._remove_unused, list(digests))

    def _remove_unused(self, digests: list[str]) -> dict[str, Removal]:
        root = os.path.join(self.root, "blobs", "sha256")
        removed = {}
        for digest in digests:
            hex_digest = digest_hex(digest)
            path = os.path.join(root, hex_digest[:2], hex_digest)
            try:
                removed[digest] = _remove_unlocked(path)
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

    async def open(
        self, digest: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Yield bytes `[start, end)` (end exclusive, None = to the end) in large chunks."""
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


def write_and_hash(fd: int, data: bytes, hasher: hashlib._Hash) -> None:
    """Write all of `data` and feed it to `hasher` (blocking: call in a thread)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    hasher.update(data)


def private_dirs(path: Path) -> None:
    """`mkdir -p` with every new level 0700 (pathlib gives parents the default mode)."""
    if path.is_dir():
        return
    private_dirs(path.parent)
    with contextlib.suppress(FileExistsError):  # another process made it first
        path.mkdir(mode=PRIVATE_DIR_MODE)


def create_private_locked(directory: Path, stem: str) -> tuple[int, Path]:
    """A new file under a unique name, already holding an exclusive flock."""
    path = directory / f"{stem}.{os.getpid()}.{secrets.token_hex(6)}.new"
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, PRIVATE_FILE_MODE)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd, path


def create_locked(path: Path) -> int | None:
    """Create `path` already holding an exclusive flock; None if it exists.

    The file is made under a private name, locked, then hard-linked into place:
    `link` is as exclusive as O_CREAT|O_EXCL, and the name never points at an
    unlocked file, so "exists but unlocked" reliably means "its writer died".
    """
    fd, private = create_private_locked(path.parent, path.name)
    try:
        os.link(private, path)
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, FileExistsError):
            return None
        raise
    finally:
        private.unlink()
    return fd


def lock_is_held(fd: int) -> bool:
    """Whether another open file (any process) holds an exclusive flock on this inode."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def is_locked(path: Path) -> bool:
    """Whether `path` exists and its writer is alive."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        return lock_is_held(fd)
    finally:
        os.close(fd)


def same_file(fd: int, path: Path) -> bool:
    """Whether `path` still names the inode open as `fd`."""
    try:
        named = path.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


class Removal(Enum):
    REMOVED = "removed"
    MISSING = "missing"  # nothing to remove
    IN_USE = "in use"  # a download holds it
    FAILED = "failed"


def _remove_unlocked(path: str) -> Removal:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return Removal.MISSING
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return Removal.IN_USE
        os.unlink(path)
        return Removal.REMOVED
    finally:
        os.close(fd)


def remove_if_unlocked(path: Path) -> bool:
    """Unlink `path` unless its writer is alive; True when no stale file remains."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        # While we hold the lock of the inode the name points to, nobody else
        # can rename or unlink that name, so checking then unlinking is safe.
        if same_file(fd, path):
            path.unlink()
        return True
    finally:
        os.close(fd)
