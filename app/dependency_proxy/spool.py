"""Readers that tail a growing spool, and the spool-file download coordinator.

`BlobReader` is what every client of a blob miss iterates; `DownloadCoordinator`
is the seam for scale-out (see `downloads.py`), and `SpoolFileCoordinator` its
implementation for the processes of one machine: the leader creates
`spool/<hex>.part` exclusively and holds an exclusive `flock` on it for the
whole download (if another process can take the lock, the leader is gone),
with a `<hex>.meta` sidecar announcing the size; followers poll the file and
learn the outcome from the lock and the rename.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Protocol

from anyio import to_thread

from app.config import PRIVATE_FILE_MODE
from app.dependency_proxy.errors import DownloadFailed
from app.dependency_proxy.storage import (
    CHUNK_SIZE,
    LocalBlobStore,
    create_locked,
    is_locked,
    lock_is_held,
    remove_if_unlocked,
    same_file,
)

logger = logging.getLogger(__name__)

# A follower gives up after this many rounds of "the leader vanished, look again".
FOLLOW_ATTEMPTS = 5


class Progress(Protocol):
    async def wait_beyond(self, offset: int) -> tuple[int, bool]:
        """Wait until bytes past `offset` may be sent: (deliverable end, whether final)."""
        ...


def deliverable(written: int, size: int | None, holdback: int) -> int:
    """How much of an unverified spool may be sent: never its last `holdback` bytes."""
    if size is None:
        return max(0, written - holdback)
    return min(written, max(0, size - holdback))


class BlobReader:
    """The bytes of one blob for one client, read from a file in large chunks.

    `size` is the announced length (None if the upstream sent none). Iterating
    raises DownloadFailed if the download behind it fails. Close it (`aclose` or
    `async with`): the HTTP layer must do so when its client goes away.
    """

    def __init__(self, fd: int, size: int | None, progress: Progress, chunk_size: int) -> None:
        self.size = size
        self._fd = fd
        self._progress = progress
        self._chunk_size = chunk_size
        self._offset = 0

    def __aiter__(self) -> BlobReader:
        return self

    async def __anext__(self) -> bytes:
        while self._fd >= 0:
            end, final = await self._progress.wait_beyond(self._offset)
            if self._offset < end:
                length = min(self._chunk_size, end - self._offset)
                data = await to_thread.run_sync(os.pread, self._fd, length, self._offset)
                if not data:
                    raise DownloadFailed("the blob file was truncated while being read")
                self._offset += len(data)
                return data
            if final:
                break
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._close()

    async def __aenter__(self) -> BlobReader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._close()

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        # Safety net for a reader dropped without aclose (a client gone mid-body).
        self._close()


class CommittedProgress:
    def __init__(self, size: int) -> None:
        self._size = size

    async def wait_beyond(self, offset: int) -> tuple[int, bool]:
        return self._size, True


class Spool(Protocol):
    """The leader's side of one download: a file it alone writes."""

    fd: int

    def reader_fd(self) -> int: ...

    def announce(self, size: int | None) -> None: ...

    def commit(self, store: LocalBlobStore, digest: str) -> None: ...

    def discard(self) -> None: ...

    def release(self) -> None: ...


class DownloadCoordinator(Protocol):
    """Elects one leader per digest among workers and lets the others follow."""

    def lead(self, hex_digest: str) -> Spool | None:
        """Become the leader for this digest, or None if someone else is."""
        ...

    async def follow(self, hex_digest: str) -> BlobReader | None:
        """Tail another worker's download; None if it ended unannounced (look again)."""
        ...

    def in_flight(self, hex_digest: str) -> bool: ...

    def spooling(self, hex_digests: set[str]) -> set[str]:
        """Which of `hex_digests` are being downloaded now (blocking: call in a thread)."""
        ...

    def remove_stale(self) -> int:
        """Remove what crashed leaders left behind (blocking: call in a thread)."""
        ...


class _SpoolFile:
    def __init__(self, part: Path, meta: Path, fd: int) -> None:
        self.fd = fd
        self._part = part
        self._meta = meta
        self._committed = False
        # Readers get dups of this unlocked descriptor: a dup of `fd` would share
        # its lock and keep it alive after the leader lets go.
        self._read_fd = os.open(part, os.O_RDONLY)
        # A crashed leader's sidecar must not describe this download.
        meta.unlink(missing_ok=True)

    def reader_fd(self) -> int:
        return os.dup(self._read_fd)

    def announce(self, size: int | None) -> None:
        # One small write ending in a newline and naming this spool's inode:
        # followers ignore a partial or foreign sidecar.
        inode = os.fstat(self.fd).st_ino
        line = f"{'-' if size is None else size} {inode}\n".encode()
        fd = os.open(self._meta, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def commit(self, store: LocalBlobStore, digest: str) -> None:
        store.install(self._part, digest)
        self._committed = True

    def discard(self) -> None:
        if not self._committed:
            self._part.unlink(missing_ok=True)

    def release(self) -> None:
        self._meta.unlink(missing_ok=True)
        os.close(self._read_fd)
        os.close(self.fd)  # releases the lock: last, once everything else is settled


class _SpoolFollower:
    """Tails another process's spool by polling; the leader's lock says when it ends."""

    def __init__(self, fd: int, size: int | None, committed_path: Path, holdback: int) -> None:
        self._fd = fd
        self._size = size
        self._committed_path = committed_path
        self._holdback = holdback

    async def wait_beyond(self, offset: int) -> tuple[int, bool]:
        while True:
            # Lock first, size second: once the lock is free the size is final.
            leader_alive = lock_is_held(self._fd)
            written = os.fstat(self._fd).st_size
            if not leader_alive:
                # The leader renames into the store only after a digest match,
                # and our descriptor follows the rename.
                if same_file(self._fd, self._committed_path) and self._size in (None, written):
                    return written, True
                raise DownloadFailed("the blob download failed in another worker")
            end = deliverable(written, self._size, self._holdback)
            if end > offset:
                return end, False
            await asyncio.sleep(SpoolFileCoordinator.poll_interval)


class SpoolFileCoordinator:
    """One download per digest among the processes sharing a spool directory."""

    poll_interval = 0.015

    def __init__(self, store: LocalBlobStore, *, chunk_size: int = CHUNK_SIZE) -> None:
        self._store = store
        self._chunk_size = chunk_size

    def _part(self, hex_digest: str) -> Path:
        return self._store.spool_dir / f"{hex_digest}.part"

    def _meta(self, hex_digest: str) -> Path:
        return self._store.spool_dir / f"{hex_digest}.meta"

    def lead(self, hex_digest: str) -> Spool | None:
        part = self._part(hex_digest)
        for _ in range(2):
            fd = create_locked(part)
            if fd is not None:
                return _SpoolFile(part, self._meta(hex_digest), fd)
            if not remove_if_unlocked(part):
                return None  # a live leader
        return None

    async def follow(self, hex_digest: str) -> BlobReader | None:
        try:
            fd = os.open(self._part(hex_digest), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            announced, size = await self._wait_announced(hex_digest, fd)
        except BaseException:
            os.close(fd)
            raise
        if not announced:
            os.close(fd)
            return None
        committed_path = self._store.path_for(f"sha256:{hex_digest}")
        progress = _SpoolFollower(fd, size, committed_path, self._chunk_size)
        return BlobReader(fd, size, progress, self._chunk_size)

    async def _wait_announced(self, hex_digest: str, fd: int) -> tuple[bool, int | None]:
        """(whether the leader announced before ending, the size it announced)."""
        inode = str(os.fstat(fd).st_ino)
        while True:
            try:
                line = self._meta(hex_digest).read_text()
            except FileNotFoundError:
                line = ""
            fields = line.split()
            if line.endswith("\n") and len(fields) == 2 and fields[1] == inode:
                return True, None if fields[0] == "-" else int(fields[0])
            if not lock_is_held(fd):
                return False, None
            await asyncio.sleep(self.poll_interval)

    def in_flight(self, hex_digest: str) -> bool:
        # After the rename the leader still holds the lock on the committed file
        # until `on_commit` has recorded its row: cleanup must wait for that too.
        committed = self._store.path_for(f"sha256:{hex_digest}")
        return is_locked(self._part(hex_digest)) or is_locked(committed)

    def spooling(self, hex_digests: set[str]) -> set[str]:
        """Which of `hex_digests` have a live spool (blocking: call in a thread).

        A file already renamed into the store is still locked until its row is
        recorded; the store checks that lock itself when it removes the file.
        """
        found = set()
        for name in os.listdir(self._store.spool_dir):
            hex_digest, _, suffix = name.partition(".")
            if suffix == "part" and hex_digest in hex_digests and is_locked(self._part(hex_digest)):
                found.add(hex_digest)
        return found

    def remove_stale(self) -> int:
        removed = 0
        spool = self._store.spool_dir
        for path in spool.iterdir():
            if path.suffix in (".part", ".new") and remove_if_unlocked(path):
                removed += 1
        for path in spool.glob("*.meta"):
            if not is_locked(spool / f"{path.stem}.part"):
                path.unlink(missing_ok=True)
                removed += 1
        return removed
