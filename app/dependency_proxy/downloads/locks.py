"""Exclusive `flock`s on spool files: the liveness signal between the processes of
one machine.

A file being written in the spool folder is held under an exclusive lock by
its writer for as long as it exists; if another process can take the lock,
the writer is gone. Names are only ever made to point at a file that is
already locked, so "exists but unlocked" reliably means "its writer died".
"""

from __future__ import annotations

import fcntl
import os
import secrets
from pathlib import Path

from app.config import PRIVATE_FILE_MODE
from app.dependency_proxy.storage import Removal


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
    unlocked file.
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


def remove_unlocked(path: str) -> Removal:
    """Unlink `path` unless a writer holds its lock (blocking: call in a thread)."""
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
