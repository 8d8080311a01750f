"""`BlobDownloads`: the in-process half of download-once (the protocol is told in
`downloads/__init__.py`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from typing import Protocol

from anyio import to_thread

from app.dependency_proxy.downloads.cluster import ClusterDownloads
from app.dependency_proxy.downloads.spool import (
    DISK_FULL,
    FOLLOW_ATTEMPTS,
    BlobReader,
    DownloadCoordinator,
    Spool,
    SpoolFileCoordinator,
    StoredReader,
    deliverable,
    out_of_space,
    reserve,
)
from app.dependency_proxy.errors import DownloadFailed, OutOfSpace, TooLarge
from app.dependency_proxy.storage import CHUNK_SIZE, BlobStore, Staging, digest_hex

logger = logging.getLogger("dockyard.downloads")

Reader = BlobReader | StoredReader


class UpstreamBlob(Protocol):
    """An open upstream blob response (see `upstream.UpstreamClient`)."""

    size: int | None  # from Content-Length

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


StartDownload = Callable[[], Awaitable[UpstreamBlob]]
OnCommit = Callable[[int], Awaitable[None]]
# Told when a download failed for want of disk (or bucket) space: the bytes it needed.
OnOutOfSpace = Callable[[int], None]


class _Download:
    """One download led by this process, shared by its in-process readers."""

    def __init__(self, hex_digest: str, spool: Spool, holdback: int, party: Hashable) -> None:
        self.hex_digest = hex_digest
        self.spool = spool
        self.party = party
        self.size: int | None = None
        self.written = 0
        self.committed = False
        self.released = False
        self.superseded = False
        self.error: BaseException | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._holdback = holdback
        self._changed = asyncio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def begin(self, size: int | None) -> None:
        self.size = size
        self.ready.set_result(None)

    def supersede(self) -> None:
        """Committed by another worker since we looked: callers look again."""
        self.superseded = True
        self.ready.set_result(None)

    def advance(self, written: int) -> None:
        self.written = written
        self._notify()

    def succeed(self) -> None:
        self.committed = True
        self._notify()

    def fail(self, exc: BaseException) -> None:
        self.error = exc
        if not self.ready.done():
            if not isinstance(exc, Exception):  # cancelled: a future cannot carry that
                exc = DownloadFailed("the blob download was cancelled")
            self.ready.set_exception(exc)
            self.ready.exception()  # callers that went away must not leave it "unretrieved"
        self._notify()

    def failure(self) -> DownloadFailed:
        """What a waiting client is told: a full disk says so, anything else is generic."""
        if isinstance(self.error, OutOfSpace):
            return self.error
        return DownloadFailed("the blob download failed; nothing was cached")

    async def wait_beyond(self, offset: int) -> tuple[int, bool]:
        while True:
            if self.error is not None:
                raise self.failure()
            if self.committed:
                return self.written, True
            end = deliverable(self.written, self.size, self._holdback)
            if end > offset:
                return end, False
            await self._changed.wait()


class BlobDownloads:
    """Serves blobs from the store, downloading each missing digest exactly once."""

    def __init__(
        self,
        store: BlobStore,
        *,
        max_size: int,
        chunk_size: int = CHUNK_SIZE,
        coordinator: DownloadCoordinator | None = None,
        cluster: ClusterDownloads | None = None,
    ) -> None:
        self._store = store
        self._max_size = max_size
        self._chunk_size = chunk_size
        self._coordinator = coordinator or SpoolFileCoordinator(
            store.spool_dir, chunk_size=chunk_size
        )
        self._cluster = cluster
        self._downloads: dict[str, _Download] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Set by the cache: a full disk asks the eviction pass to run at once.
        self.on_out_of_space: OnOutOfSpace | None = None

    async def open(
        self,
        digest: str,
        start: StartDownload,
        on_commit: OnCommit | None = None,
        party: Hashable = None,
    ) -> Reader:
        """A reader of the blob, once its upstream response is in (or it is stored).

        Errors of `start()` (UpstreamError, BlobUnknown, TooLarge...) are raised
        here, to every caller of the same `party` waiting for the same download
        (one group with the same credentials: the same answer). A caller of
        another party tries again with its own `start` instead: one group's
        refused request must not fail another group's pull. `on_commit` is
        awaited only by a download this process fetched from the upstream (for
        the caller that started it, even if its client has gone); callers that
        joined someone else's download (a relay of another instance's included),
        or found the blob stored, record their own row.
        """
        hex_digest = digest_hex(digest)
        for _ in range(FOLLOW_ATTEMPTS):
            stored = await self._open_committed(digest)
            if stored is not None:
                return stored
            download = self._downloads.get(hex_digest) or self._lead(
                digest, start, on_commit, party
            )
            reader = (
                await self._join(download, party)
                if download is not None
                else await self._coordinator.follow(hex_digest)
            )
            if reader is not None:
                return reader
        raise DownloadFailed("the blob download kept being interrupted")

    @property
    def active_count(self) -> int:
        """Downloads this process is running now (for metrics)."""
        return len(self._downloads)

    def in_flight(self, digest: str) -> bool:
        """Whether any worker on this machine is downloading (or committing) the digest."""
        hex_digest = digest_hex(digest)
        return hex_digest in self._downloads or self._coordinator.in_flight(hex_digest)

    async def in_flight_of(self, digests: Sequence[str]) -> set[str]:
        """Which of `digests` some worker on this machine is downloading: one look
        at the spool folder for the lot, a lock check only for the spools found."""
        wanted = {digest_hex(digest): digest for digest in digests}
        spooling = await to_thread.run_sync(self._coordinator.spooling, set(wanted))
        found = {
            wanted[hex_digest]
            for hex_digest in set(self._downloads) | spooling
            if hex_digest in wanted
        }
        if self._cluster is not None and wanted:
            # Every instance's downloads: the lease table says which digests are leased.
            found |= await self._cluster.leases.leased(set(wanted.values()) - found)
        return found

    async def tail(self, digest: str) -> BlobReader | None:
        """A reader of the download of `digest` running on this machine, for another
        instance (the internal endpoint); None if there is none (ended, or never here)."""
        hex_digest = digest_hex(digest)
        download = self._downloads.get(hex_digest)
        if download is None:
            return await self._coordinator.follow(hex_digest)
        try:
            await asyncio.shield(download.ready)
        except Exception:
            return None
        if download.error is not None or download.released or download.superseded:
            return None
        return BlobReader(download.spool.reader_fd(), download.size, download, self._chunk_size)

    async def remove_stale_spools(self) -> int:
        return await to_thread.run_sync(self._coordinator.remove_stale)

    async def aclose(self) -> None:
        """Cancel running downloads; each removes its spool on the way out."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # A task cancelled before its first step never runs its own clean-up.
        for download in list(self._downloads.values()):
            self._abandon(download, DownloadFailed("the blob download was cancelled"))
            self._settle(download)
        if self._cluster is not None:
            await self._cluster.aclose()

    async def _open_committed(self, digest: str) -> StoredReader | None:
        size = await self._store.stat(digest)
        if size is None:
            return None
        return StoredReader(self._store.open_range(digest), size)

    def _lead(
        self, digest: str, start: StartDownload, on_commit: OnCommit | None, party: Hashable
    ) -> _Download | None:
        hex_digest = digest_hex(digest)
        spool = self._coordinator.lead(hex_digest)
        if spool is None:
            return None
        download = _Download(hex_digest, spool, self._chunk_size, party)
        self._downloads[hex_digest] = download
        task = asyncio.create_task(self._run(download, start, on_commit))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return download

    async def _join(self, download: _Download, party: Hashable) -> BlobReader | None:
        try:
            # Shielded: a caller that goes away must not cancel the shared future.
            await asyncio.shield(download.ready)
        except Exception:
            if download.party != party:
                return None  # it failed before its first byte: look again, lead ourselves
            raise
        if download.error is not None:
            raise download.failure()
        if download.released or download.superseded:
            return None  # committed: the store has it
        fd = download.spool.reader_fd()
        return BlobReader(fd, download.size, download, self._chunk_size)

    async def _run(
        self, download: _Download, start: StartDownload, on_commit: OnCommit | None
    ) -> None:
        digest = f"sha256:{download.hex_digest}"
        try:
            try:
                if self._cluster is None:
                    size = await self._fetch(download, start)
                else:
                    # Lead under the digest's lease, or relay another instance's download.
                    size = await self._cluster.fetch(download, lambda: self._fetch(download, start))
            except OSError as exc:
                if exc.errno not in DISK_FULL:
                    self._abandon(download, exc)
                    raise
                full = out_of_space(download.size)
                # Without a Content-Length: room for at least what had arrived.
                full.needed = full.needed or download.written
                self._abandon(download, full)
                raise full from exc
            except BaseException as exc:
                self._abandon(download, exc)
                raise
            if size is None:
                return  # committed by another worker or instance: callers look again
            download.succeed()
            # Only a download this process fetched records its starter's row: `start`
            # (the starter's own upstream GET) confirmed that group's right to the
            # blob. A relay's starter never sent it; its clients record their rows
            # when the whole blob went through them, after their own checks.
            fetched_here = self._cluster is None or self._cluster.held(download.hex_digest)
            if on_commit is not None and fetched_here:
                await on_commit(size)
        except OutOfSpace as exc:
            logger.error(
                "blob download %s failed: out of disk space (data folder or bucket quota)"
                " for %s bytes; nothing was kept, cached blobs are still served,"
                " the eviction pass runs now",
                digest,
                exc.needed or "its",
            )
            if self.on_out_of_space is not None:
                self.on_out_of_space(exc.needed)
        except Exception as exc:
            logger.warning("blob download %s failed: %r", digest, exc)
        finally:
            if self._cluster is not None:
                await self._cluster.release(download.hex_digest)  # after the row, on purpose
            self._settle(download)

    async def _fetch(self, download: _Download, start: StartDownload) -> int | None:
        """Download from the upstream; None if the blob was committed since we looked."""
        if await self._store.stat(f"sha256:{download.hex_digest}") is not None:
            download.spool.discard()
            download.supersede()
            return None
        return await self._transfer(download, start)

    @staticmethod
    def _abandon(download: _Download, exc: BaseException) -> None:
        download.spool.discard()
        download.fail(exc)

    def _settle(self, download: _Download) -> None:
        if not download.released:
            download.spool.release()  # drops the lock: other workers see the outcome now
            download.released = True
        if self._downloads.get(download.hex_digest) is download:
            del self._downloads[download.hex_digest]

    async def _transfer(self, download: _Download, start: StartDownload) -> int:
        """Fetch, spool, verify and commit; returns the size."""
        staging = self._store.stage(f"sha256:{download.hex_digest}", download.spool.file)
        try:
            upstream = await start()
            try:
                size = upstream.size
                if size is not None and size > self._max_size:
                    raise TooLarge(f"the blob is {size} bytes, over the {self._max_size}-byte cap")
                if size is not None:
                    # Before any client is sent a byte: a full disk is an error they can read.
                    await to_thread.run_sync(reserve, download.spool.file.fd, size)
                download.spool.announce(size)
                download.begin(size)
                await self._spool(download, upstream, staging)
            finally:
                await upstream.aclose()
            # The store checks the sha256 before the blob becomes visible under its key.
            written = await staging.commit()
        except BaseException:
            try:
                await staging.abort()
            except Exception:  # the sweep of incomplete uploads gets it later
                logger.warning("aborting the staged blob %s failed", download.hex_digest)
            raise
        download.spool.committed(written)
        return written

    async def _spool(self, download: _Download, upstream: UpstreamBlob, staging: Staging) -> None:
        size, written = download.size, 0
        chunks = upstream.chunks()
        # One write in flight while the next chunk is read: reading the network
        # and writing the disk overlap instead of taking turns.
        pending: asyncio.Future[None] | None = None
        try:
            async for chunk in chunks:
                if pending is not None:
                    await pending
                    download.advance(written)
                written += len(chunk)
                if written > self._max_size:
                    raise TooLarge(f"the blob is over the {self._max_size}-byte cap")
                if size is not None and written > size:
                    raise DownloadFailed("the upstream sent more bytes than it announced")
                pending = asyncio.ensure_future(staging.write(chunk))
            if pending is not None:
                await pending
                download.advance(written)
        finally:
            if pending is not None:
                # Never leave a write running into a spool that is being discarded,
                # and never leave its error unretrieved.
                await asyncio.wait([pending])
                if not pending.cancelled():
                    pending.exception()
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()
        if size is not None and written != size:
            raise DownloadFailed("the upstream stream ended early")
