"""Spool files: where a download lands on this machine, and how its readers tail it.

`BlobReader` is what every client of a blob miss iterates (a file that grows,
read in large chunks); `StoredReader` serves a committed blob from the store.
`SpoolFileCoordinator` is the `DownloadCoordinator` for the processes of one
machine (the protocol is described in `downloads/__init__.py`).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import logging
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from anyio import to_thread

from app.config import PRIVATE_FILE_MODE
from app.dependency_proxy.downloads.locks import (
    create_locked,
    is_locked,
    lock_is_held,
    remove_if_unlocked,
    same_file,
)
from app.dependency_proxy.errors import DownloadFailed, OutOfSpace
from app.dependency_proxy.storage import CHUNK_SIZE, SpoolFile

logger = logging.getLogger(__name__)

# A follower gives up after this many rounds of "the leader vanished, look again".
FOLLOW_ATTEMPTS = 5


class Progress(Protocol):
    async def wait_beyond(self, offset: int) -> tuple[int, bool]:
        """Wait until bytes past `offset` may be sent: (deliverable end, whether final)."""
        ...


# fallocate(2) with FALLOC_FL_KEEP_SIZE: the blocks are reserved, the file's size
# (which followers in other processes read as "bytes written") stays what was written.
FALLOC_FL_KEEP_SIZE = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def out_of_space(size: int | None) -> OutOfSpace:
    what = f"a {size}-byte blob" if size is not None else "the blob"
    return OutOfSpace(
        f"the cache is out of disk space: {what} could not be stored; try again later",
        needed=size or 0,
    )


def reserve(fd: int, size: int) -> None:
    """Reserve `size` bytes of disk for a spool before its first byte is sent to anyone
    (blocking: call in a thread), so a full disk fails the download while every
    waiting client can still be answered with an error rather than a cut body.
    OutOfSpace when the disk cannot hold it; filesystems without fallocate are
    checked against their free space instead."""
    if size <= 0:
        return
    if _libc.fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, size) == 0:
        return
    error = ctypes.get_errno()
    if error in DISK_FULL:
        raise out_of_space(size)
    if error not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
        raise OSError(error, os.strerror(error))
    free = os.fstatvfs(fd)
    if free.f_bavail * free.f_frsize < size:
        raise out_of_space(size)


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


class StoredReader:
    """The bytes of a committed blob for one client, from the store."""

    def __init__(self, chunks: AsyncIterator[bytes], size: int) -> None:
        self.size: int | None = size
        self._chunks = chunks

    def __aiter__(self) -> StoredReader:
        return self

    async def __anext__(self) -> bytes:
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        close = getattr(self._chunks, "aclose", None)
        if close is not None:
            await close()


class Spool(Protocol):
    """The leader's side of one download: a file it alone writes."""

    file: SpoolFile

    def reader_fd(self) -> int: ...

    def announce(self, size: int | None) -> None: ...

    def committed(self, size: int) -> None:
        """The store holds the blob now: followers on this machine may finish."""
        ...

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


# The mark of a committed download: its spool file turns read-only. The mark is
# on the inode itself, so a follower sees it through its own descriptor whether
# the file was renamed into the store, unlinked after an upload, or replaced
# by another leader's spool under the same name.
COMMITTED_MODE = 0o400


def _write_sidecar(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    try:
        os.write(fd, line.encode())  # one small write: all of it or nothing
    finally:
        os.close(fd)


def is_committed(fd: int) -> bool:
    return stat.S_IMODE(os.fstat(fd).st_mode) == COMMITTED_MODE


class _SpoolFile:
    def __init__(self, part: Path, meta: Path, fd: int) -> None:
        self.file = SpoolFile(fd, part)
        self._meta = meta
        self._size: int | None = None
        self._committed = False
        # Readers get dups of this unlocked descriptor: a dup of `fd` would share
        # its lock and keep it alive after the leader lets go.
        self._read_fd = os.open(part, os.O_RDONLY)
        self._inode = os.fstat(fd).st_ino
        # A crashed leader's sidecar must not describe this download.
        meta.unlink(missing_ok=True)

    def reader_fd(self) -> int:
        return os.dup(self._read_fd)

    def announce(self, size: int | None) -> None:
        # Naming this spool's inode: followers ignore a foreign sidecar.
        self._size = size
        _write_sidecar(self._meta, f"{'-' if size is None else size} {self._inode}\n")

    def committed(self, size: int) -> None:
        # Before the lock is released: a follower that finds the lock free and
        # no mark knows the download failed (whatever the store holds by then:
        # another download's bytes are not the ones it has been reading).
        self._committed = True
        os.fchmod(self.file.fd, COMMITTED_MODE)

    def discard(self) -> None:
        if not self._committed:
            self._remove_name()

    def release(self) -> None:
        if self._committed:
            # Object storage: the spool kept its name until the row was recorded
            # (cleanup sees the download in flight until then); it goes now.
            self._remove_name()
        self._meta.unlink(missing_ok=True)
        os.close(self._read_fd)
        os.close(self.file.fd)  # releases the lock: last, once everything else is settled

    def _remove_name(self) -> None:
        # The local store renamed it into place already; never unlink a new leader's file.
        if same_file(self.file.fd, self.file.path):
            self.file.path.unlink(missing_ok=True)


def _read_sidecar(meta: Path, inode: int) -> tuple[bool, int | None]:
    """(announced, size) as the sidecar says for the spool `inode`: a partial or
    foreign line (a crashed leader's) says nothing."""
    try:
        line = meta.read_text()
    except FileNotFoundError:
        return False, None
    fields = line.split()
    if not line.endswith("\n") or len(fields) != 2 or fields[1] != str(inode):
        return False, None
    return True, None if fields[0] == "-" else int(fields[0])


class _SpoolFollower:
    """Tails another process's spool by polling; the leader's lock says when it ends."""

    def __init__(self, fd: int, size: int | None, holdback: int) -> None:
        self._fd = fd
        self._size = size
        self._holdback = holdback

    async def wait_beyond(self, offset: int) -> tuple[int, bool]:
        while True:
            # Lock first, size second: once the lock is free the size is final.
            leader_alive = lock_is_held(self._fd)
            written = os.fstat(self._fd).st_size
            if not leader_alive:
                if is_committed(self._fd) and self._size in (None, written):
                    return written, True
                raise DownloadFailed("the blob download failed in another worker")
            end = deliverable(written, self._size, self._holdback)
            if end > offset:
                return end, False
            await asyncio.sleep(SpoolFileCoordinator.poll_interval)


class SpoolFileCoordinator:
    """One download per digest among the processes sharing a spool directory."""

    poll_interval = 0.015

    def __init__(self, spool_dir: Path, *, chunk_size: int = CHUNK_SIZE) -> None:
        self.spool_dir = spool_dir
        self._chunk_size = chunk_size

    def _part(self, hex_digest: str) -> Path:
        return self.spool_dir / f"{hex_digest}.part"

    def _meta(self, hex_digest: str) -> Path:
        return self.spool_dir / f"{hex_digest}.meta"

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
        progress = _SpoolFollower(fd, size, self._chunk_size)
        return BlobReader(fd, size, progress, self._chunk_size)

    async def _wait_announced(self, hex_digest: str, fd: int) -> tuple[bool, int | None]:
        """(whether the leader announced before ending, the size it announced)."""
        inode = os.fstat(fd).st_ino
        while True:
            announced, size = _read_sidecar(self._meta(hex_digest), inode)
            if announced:
                return True, size
            if not lock_is_held(fd):
                return False, None
            await asyncio.sleep(self.poll_interval)

    def in_flight(self, hex_digest: str) -> bool:
        # A committing leader holds the lock on its spool until `on_commit` has
        # recorded its row: on the local store the spool was renamed into the
        # store by then, and cleanup's removal checks that lock itself.
        return is_locked(self._part(hex_digest))

    def spooling(self, hex_digests: set[str]) -> set[str]:
        """Which of `hex_digests` have a live spool (blocking: call in a thread)."""
        found = set()
        for name in os.listdir(self.spool_dir):
            hex_digest, _, suffix = name.partition(".")
            if suffix == "part" and hex_digest in hex_digests and is_locked(self._part(hex_digest)):
                found.add(hex_digest)
        return found

    def remove_stale(self) -> int:
        removed = 0
        spool = self.spool_dir
        for path in spool.iterdir():
            if path.suffix in (".part", ".new") and remove_if_unlocked(path):
                removed += 1
        for path in spool.glob("*.meta"):
            if not is_locked(spool / f"{path.stem}.part"):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    async def sweep(self) -> int:
        return await to_thread.run_sync(self.remove_stale)
