"""`ClusterDownloads`: the cross-instance half of download-once (PostgreSQL + S3).

On each machine one process runs the download of a digest (`BlobDownloads`
with its spool); with several instances, that process first asks PostgreSQL
for the digest's lease (`leases.py`):

- It gets the lease: it downloads from the upstream as on one machine, renews
  the lease every `lease_seconds / 4` while it works, and releases it only
  after the row was recorded (cleanup and the sweep of incomplete uploads see
  the digest in flight until then). Having taken over a dead holder's lease,
  it first aborts that holder's incomplete upload of the digest.
- Another process holds it: this process *relays*. It streams the holder's
  growing spool from the holder's internal endpoint (`internal.py`) into its
  own spool, hashing as it goes, and its clients (and the other processes of
  its machine) tail that spool as they would a download. The holder sends the
  last chunk only after its digest check and commit, and the relay checks the
  digest again before releasing its own last chunk. If the holder dies
  mid-blob, the stream breaks and every client of the relay sees a cut
  connection, never a complete-looking wrong blob; the next request finds the
  lease expired (within `lease_seconds`) and downloads afresh.
- Before a relay's first byte, nothing is lost by asking again: a holder that
  does not answer, or no longer has the download (it just finished), makes
  the relay look again until the blob is in the store, the lease is free, or
  a live holder answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import httpx
from anyio import to_thread

from app.dependency_proxy.downloads import internal
from app.dependency_proxy.downloads.leases import Acquired, Holder, PostgresLeases
from app.dependency_proxy.downloads.spool import Spool
from app.dependency_proxy.errors import DownloadFailed
from app.dependency_proxy.storage import CHUNK_SIZE, BlobStore, write_and_hash

log = logging.getLogger("dockyard.downloads.cluster")

# How often a relay looks again while the holder cannot serve yet.
RETRY_SECONDS = 0.25


class RemoteUnavailable(Exception):
    """The holder could not start serving the blob: look again (nothing was sent)."""


class Relayed(Protocol):
    """What the relay needs of a `coordinator._Download`."""

    hex_digest: str
    spool: Spool

    def begin(self, size: int | None) -> None: ...

    def advance(self, written: int) -> None: ...

    def supersede(self) -> None: ...


class ClusterDownloads:
    def __init__(
        self,
        leases: PostgresLeases,
        store: BlobStore,
        secret_key: str,
        *,
        chunk_size: int = CHUNK_SIZE,
        read_timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.leases = leases
        self._store = store
        self._secret_key = secret_key
        self._chunk_size = chunk_size
        self._heartbeats: dict[str, asyncio.Task[None]] = {}
        # Followers wait at most this long for a holder to answer or its lease to lapse.
        self.patience = 3 * leases.lease_seconds + 10
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(read_timeout, connect=2.0),
            follow_redirects=False,
            transport=transport,  # tests inject faults here
        )

    async def aclose(self) -> None:
        for task in list(self._heartbeats.values()):
            task.cancel()
        await asyncio.gather(*self._heartbeats.values(), return_exceptions=True)
        await self._client.aclose()

    def held(self, hex_digest: str) -> bool:
        return hex_digest in self._heartbeats

    async def fetch(
        self, download: Relayed, lead: Callable[[], Awaitable[int | None]]
    ) -> int | None:
        """Lead (`lead()`, under the lease) or relay the download; the size, or None
        if the blob turned out committed. The lease, if taken, is held until `release`."""
        digest = f"sha256:{download.hex_digest}"
        deadline = time.monotonic() + self.patience
        told = ""
        while True:
            outcome = await self.leases.acquire(digest)
            if isinstance(outcome, Acquired):
                self._hold(download.hex_digest)
                if outcome.took_over:
                    await self._sweep_dead_upload(digest)
                return await lead()
            if isinstance(outcome, Holder):
                try:
                    return await self._relay(download, outcome)
                except RemoteUnavailable as why:
                    # Once per holder (a dead one is asked every RETRY_SECONDS).
                    level = logging.DEBUG if outcome.holder == told else logging.WARNING
                    log.log(
                        level,
                        "blob %s: the instance downloading it (%s, %s) cannot serve it: %s",
                        digest,
                        outcome.holder,
                        outcome.address,
                        why,
                    )
                    told = outcome.holder
                # A holder we cannot reach (a wrong DOCKYARD_INTERNAL_URL) may still
                # finish: then the store has the blob and our callers read it there.
                if await self._store.stat(digest) is not None:
                    download.spool.discard()
                    download.supersede()
                    return None
                if time.monotonic() > deadline:
                    raise DownloadFailed("the instance downloading the blob does not answer")
                await asyncio.sleep(RETRY_SECONDS)

    async def release(self, hex_digest: str) -> None:
        """Give the lease back (after the row was recorded); no-op if not held."""
        heartbeat = self._heartbeats.pop(hex_digest, None)
        if heartbeat is None:
            return
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
        try:
            await self.leases.release(f"sha256:{hex_digest}")
        except Exception:  # it lapses by itself within lease_seconds
            log.warning("releasing the lease of %s failed", hex_digest, exc_info=True)

    def _hold(self, hex_digest: str) -> None:
        self._heartbeats[hex_digest] = asyncio.create_task(
            self._heartbeat(f"sha256:{hex_digest}"), name=f"lease {hex_digest[:12]}"
        )

    async def _heartbeat(self, digest: str) -> None:
        while True:
            await asyncio.sleep(self.leases.lease_seconds / 4)
            try:
                if not await self.leases.renew(digest):
                    # Too slow to renew: another instance took over and downloads
                    # too. Ours still completes (identical, verified bytes).
                    log.warning("the lease of %s was taken over", digest)
                    return
            except Exception:
                log.warning("renewing the lease of %s failed", digest, exc_info=True)

    async def _sweep_dead_upload(self, digest: str) -> None:
        try:
            swept = await self._store.sweep_incomplete(0, digest=digest)
        except Exception:  # the periodic sweep gets it later
            log.warning("aborting a dead holder's upload of %s failed", digest, exc_info=True)
            return
        if swept:
            log.info("aborted %d incomplete upload(s) of %s left by a dead instance", swept, digest)

    async def _relay(self, download: Relayed, holder: Holder) -> int:
        digest = f"sha256:{download.hex_digest}"
        request = self._client.build_request(
            "GET",
            f"{holder.address}{internal.PATH}{digest}",
            headers=internal.headers(self._secret_key, digest),
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as error:
            raise RemoteUnavailable(type(error).__name__) from None
        try:
            if response.status_code != 200:
                raise RemoteUnavailable(f"HTTP {response.status_code}")
            announced = response.headers.get(internal.SIZE_HEADER, "")
            size = int(announced) if announced.isdigit() else None
            download.spool.announce(size)
            download.begin(size)
            # From here on the download's readers exist: any failure is final.
            written = await self._copy(download, response, size)
        finally:
            await response.aclose()
        download.spool.committed(written)
        return written

    async def _copy(self, download: Relayed, response: httpx.Response, size: int | None) -> int:
        fd, hasher = download.spool.file.fd, hashlib.sha256()
        written, buffer = 0, bytearray()
        try:
            async for data in response.aiter_raw():
                buffer += data
                if size is not None and written + len(buffer) > size:
                    raise DownloadFailed("the holder sent more bytes than it announced")
                if len(buffer) >= self._chunk_size:
                    await to_thread.run_sync(write_and_hash, fd, bytes(buffer), hasher)
                    written += len(buffer)
                    buffer.clear()
                    download.advance(written)
            if buffer:
                await to_thread.run_sync(write_and_hash, fd, bytes(buffer), hasher)
                written += len(buffer)
                download.advance(written)
        except httpx.HTTPError:
            raise DownloadFailed("the instance downloading the blob went away mid-blob") from None
        if (size is not None and written != size) or hasher.hexdigest() != download.hex_digest:
            raise DownloadFailed("the blob relayed from another instance is incomplete or wrong")
        return written
