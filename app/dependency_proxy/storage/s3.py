"""`BlobStore` on S3-compatible object storage (AWS S3, SeaweedFS, MinIO, Ceph...).

Objects live at `<prefix>blobs/sha256/<first two hex>/<hex>`; credentials come
from the standard AWS chain (environment, profiles, instance roles), never from
our own settings.

Writing: a download still spools to the local disk (readers on this machine
tail that file), and its completed parts are uploaded while the rest arrives:
a multipart upload straight to the blob's final key, parts of `PART_SIZE` read
back from the spool, at most `PART_SLOTS` in flight per store, so memory stays
bounded by a few times `PART_SIZE * PART_SLOTS` however large or many the
blobs. Visibility:
the multipart upload is *completed* only after the sha256 of everything written
matched the digest; until then the object does not exist under its key, and a
mismatch or failure aborts the upload. This costs no copy (a staging key plus
CopyObject would read and write every byte again, and CopyObject stops at 5 GiB
on AWS). Two writers of the same digest may both complete: they hold identical
bytes, so the last one wins harmlessly; nothing relies on conditional writes
for exclusivity (SeaweedFS does not serialise racing conditional completes).
A blob smaller than one part is sent with one PutObject after verification.

Incomplete uploads that a crash left behind are aborted by `sweep_incomplete`
(at start-up and by cleanup): ListMultipartUploads under our prefix, older than
the age given, never this process's own uploads in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from anyio import to_thread
from botocore.exceptions import BotoCoreError, ClientError

from app.dependency_proxy.errors import BlobUnknown, DigestMismatch, DownloadFailed, OutOfSpace
from app.dependency_proxy.storage import (
    CHUNK_SIZE,
    Removal,
    SpoolFile,
    Writing,
    blob_key,
    digest_hex,
    write_and_hash,
)
from app.dependency_proxy.storage.local import private_dirs

if TYPE_CHECKING:
    from app.config import Settings

log = logging.getLogger("dockyard.storage.s3")

MIB = 1 << 20
# 8 MiB parts, at most 4 in flight per store. botocore holds about three copies
# of a part while it signs and sends it: a 256 MiB upload raised the RSS by
# 84-99 MiB, whatever the blob's size (docs/benchmarks.md). 16 MiB parts, or 2
# slots, were not faster against SeaweedFS on 2 cores.
PART_SIZE = 8 * MIB
PART_SLOTS = 4
# How long a pre-signed redirect URL is valid: a client follows it at once.
PRESIGNED_SECONDS = 300
# Readiness asks the bucket at most this often.
CHECK_SECONDS = 5.0
# Concurrent HEADs when cleanup asks which of a batch of blobs exist.
HEAD_CONCURRENCY = 16
DELETE_BATCH = 1000  # DeleteObjects' limit


# What S3-compatible servers answer when a bucket's quota (or their disk) is full:
# MinIO's, Ceph RGW's and the generic one.
QUOTA_CODES = frozenset(
    {"QuotaExceeded", "XMinioAdminBucketQuotaExceeded", "XMinioStorageFull", "StorageFull"}
)


def _quota_exceeded(error: ClientError, length: int) -> OutOfSpace | None:
    code = str(error.response.get("Error", {}).get("Code", ""))
    if code not in QUOTA_CODES:
        return None
    return OutOfSpace(
        f"the cache is out of disk space: the bucket refused a write ({code}); try again later",
        needed=length,
    )


def _missing(error: ClientError) -> bool:
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchUpload")


class S3Staging:
    """One blob being uploaded from its spool file (see the module docstring)."""

    def __init__(self, store: S3BlobStore, digest: str, spool: SpoolFile) -> None:
        self._store = store
        self._digest = digest
        self._hex = digest_hex(digest)
        self._key = store.key(digest)
        self._fd = spool.fd
        self._hasher = hashlib.sha256()
        self.size = 0
        self._handed = 0  # bytes given to part uploads so far
        self._parts: dict[int, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._create: asyncio.Future[str] | None = None
        self._done = False

    async def write(self, data: bytes) -> None:
        await to_thread.run_sync(write_and_hash, self._fd, data, self._hasher)
        self.size += len(data)
        while self.size - self._handed >= self._store.part_size:
            self._start_part(self._handed, self._store.part_size)

    def _start_part(self, offset: int, length: int) -> None:
        self._handed = offset + length
        number = len(self._tasks) + 1
        self._tasks.append(asyncio.create_task(self._upload_part(number, offset, length)))

    async def _upload_id(self) -> str:
        if self._create is None:
            self._create = asyncio.ensure_future(self._store.create_upload(self._key))
        return await asyncio.shield(self._create)

    async def _upload_part(self, number: int, offset: int, length: int) -> None:
        upload_id = await self._upload_id()
        async with self._store.part_slots:
            data = await to_thread.run_sync(os.pread, self._fd, length, offset)
            if len(data) != length:
                raise DownloadFailed("the spool file is shorter than what was written")
            self._parts[number] = await self._store.upload_part(self._key, upload_id, number, data)

    async def commit(self) -> int:
        if self._hasher.hexdigest() != self._hex:
            raise DigestMismatch(f"the bytes written are not {self._digest}")
        await to_thread.run_sync(os.fsync, self._fd)
        if not self._tasks:
            # Smaller than one part: one request, after the check.
            data = await to_thread.run_sync(os.pread, self._fd, self.size, 0)
            await self._store.put(self._key, data)
        else:
            if self.size > self._handed:
                self._start_part(self._handed, self.size - self._handed)
            await asyncio.gather(*self._tasks)
            upload_id = await self._upload_id()
            await self._store.complete_upload(self._key, upload_id, self._parts)
        self._done = True
        return self.size

    async def abort(self) -> None:
        if self._done:
            return
        self._done = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._create is not None:
            with contextlib.suppress(Exception):
                upload_id = await self._create
                await self._store.abort_upload(self._key, upload_id)


class S3BlobStore:
    kind = "s3"
    keeps_files = False

    def __init__(
        self,
        *,
        bucket: str,
        spool_root: Path,
        prefix: str = "",
        endpoint_url: str = "",
        region: str = "",
        redirect: bool = False,
        part_size: int = PART_SIZE,
        part_slots: int = PART_SLOTS,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"
        self.endpoint_url = endpoint_url or None
        self.region = region or None
        self.redirect = redirect
        self.part_size = part_size
        self.part_slots = asyncio.Semaphore(part_slots)
        self.chunk_size = chunk_size
        self._spool_dir = spool_root / "spool"
        private_dirs(self._spool_dir)
        self._client: Any = None
        self._exit = contextlib.AsyncExitStack()
        self._live_uploads: set[str] = set()
        self._checked_at = -CHECK_SECONDS
        self._check_error: Exception | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> S3BlobStore:
        return cls(
            bucket=settings.s3_bucket,
            spool_root=settings.data_dir,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            redirect=settings.s3_redirect,
        )

    @property
    def spool_dir(self) -> Path:
        return self._spool_dir

    def key(self, digest: str) -> str:
        return f"{self.prefix}{blob_key(digest)}"

    async def start(self) -> None:
        if self._client is not None:
            return
        config = AioConfig(
            # Path-style addressing works with every S3-compatible server.
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            signature_version="s3v4",
            max_pool_connections=32,
            # Our own sha256 already checks every byte; no extra CRC per part.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard", "max_attempts": 3},
        )
        client = get_session().create_client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=config
        )
        self._client = await self._exit.enter_async_context(client)

    async def aclose(self) -> None:
        await self._exit.aclose()
        self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("the S3 store was not started")
        return self._client

    # --- writing ---------------------------------------------------------------

    def stage(self, digest: str, spool: SpoolFile) -> S3Staging:
        return S3Staging(self, digest, spool)

    async def create_upload(self, key: str) -> str:
        answer = await self.client.create_multipart_upload(Bucket=self.bucket, Key=key)
        upload_id = str(answer["UploadId"])
        self._live_uploads.add(upload_id)
        return upload_id

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        try:
            answer = await self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
        except ClientError as error:
            full = _quota_exceeded(error, len(data))
            if full is None:
                raise
            raise full from error
        return str(answer["ETag"])

    async def complete_upload(self, key: str, upload_id: str, parts: dict[int, str]) -> None:
        try:
            await self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": n, "ETag": parts[n]} for n in sorted(parts)]
                },
            )
        finally:
            self._live_uploads.discard(upload_id)

    async def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            await self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )
        finally:
            self._live_uploads.discard(upload_id)

    async def put(self, key: str, data: bytes) -> None:
        await self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    # --- reading ---------------------------------------------------------------

    async def stat(self, digest: str) -> int | None:
        try:
            answer = await self.client.head_object(Bucket=self.bucket, Key=self.key(digest))
        except ClientError as error:
            if _missing(error):
                return None
            raise
        return int(answer["ContentLength"])

    def local_path(self, digest: str) -> Path | None:
        return None

    async def presigned_url(self, digest: str) -> str | None:
        if not self.redirect:
            return None
        url = await self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.key(digest)},
            ExpiresIn=PRESIGNED_SECONDS,
        )
        return str(url)

    async def open_range(
        self, digest: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(digest)}
        if start or end is not None:
            request["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        if end is not None and end <= start:
            return
        try:
            answer = await self.client.get_object(**request)
        except ClientError as error:
            if _missing(error):
                raise BlobUnknown(f"blob {digest} is not stored") from None
            raise
        body = answer["Body"]
        try:
            async for chunk in body.iter_chunks(self.chunk_size):
                yield chunk
        finally:
            body.close()

    # --- cleanup ---------------------------------------------------------------

    async def delete(self, digest: str) -> bool:
        if await self.stat(digest) is None:
            return False
        await self.client.delete_object(Bucket=self.bucket, Key=self.key(digest))
        return True

    async def remove_unused(self, digests: Sequence[str]) -> dict[str, Removal]:
        """Delete the objects (the caller checked rows and this machine's downloads)."""
        outcome: dict[str, Removal] = {}
        slots = asyncio.Semaphore(HEAD_CONCURRENCY)

        async def look(digest: str) -> None:
            async with slots:
                try:
                    present = await self.stat(digest) is not None
                except (ClientError, BotoCoreError):
                    outcome[digest] = Removal.FAILED
                    return
            outcome[digest] = Removal.REMOVED if present else Removal.MISSING

        await asyncio.gather(*(look(digest) for digest in digests))
        present = [digest for digest, found in outcome.items() if found is Removal.REMOVED]
        for first in range(0, len(present), DELETE_BATCH):
            batch = present[first : first + DELETE_BATCH]
            by_key = {self.key(digest): digest for digest in batch}
            try:
                answer = await self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in by_key], "Quiet": True},
                )
            except (ClientError, BotoCoreError):
                log.exception("deleting %d objects failed", len(batch))
                outcome.update(dict.fromkeys(batch, Removal.FAILED))
                continue
            for error in answer.get("Errors", []):
                digest = by_key.get(error.get("Key", ""))
                if digest is not None:
                    outcome[digest] = Removal.FAILED
        return outcome

    async def incomplete_uploads(
        self, digest: str | None = None
    ) -> list[tuple[str, str, datetime]]:
        """(key, upload id, initiated) of the multipart uploads under our prefix (of one
        blob's key if `digest` is given)."""
        found = []
        prefix = self.key(digest) if digest is not None else f"{self.prefix}blobs/"
        paginator = self.client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if digest is None or upload["Key"] == prefix:
                    found.append((upload["Key"], upload["UploadId"], upload["Initiated"]))
        return found

    async def sweep_incomplete(
        self,
        older_than_seconds: float,
        *,
        digest: str | None = None,
        writing: Writing | None = None,
    ) -> int:
        """Abort uploads older than the age given, never this process's own, nor (with
        `writing`) one whose digest a live writer on any instance holds. The uploads are
        listed before the writers are asked: a writer takes its lease before it creates
        its upload and releases it after completing, so a listed upload whose digest
        is not leased afterwards has no live writer."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        uploads = [
            (key, upload_id)
            for key, upload_id, initiated in await self.incomplete_uploads(digest)
            if upload_id not in self._live_uploads and initiated <= cutoff
        ]
        if writing is not None and uploads:
            digests = {key: f"sha256:{key.rsplit('/', 1)[-1]}" for key, _ in uploads}
            alive = await writing(set(digests.values()))
            uploads = [(key, upload_id) for key, upload_id in uploads if digests[key] not in alive]
        swept = 0
        for key, upload_id in uploads:
            try:
                await self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id
                )
            except ClientError as error:
                if not _missing(error):
                    raise
                continue
            swept += 1
        if swept:
            log.info("aborted %d incomplete multipart uploads", swept)
        return swept

    async def check(self) -> None:
        """HEAD the bucket, at most every CHECK_SECONDS (readiness is polled often)."""
        now = time.monotonic()
        if now - self._checked_at >= CHECK_SECONDS:
            self._checked_at = now
            try:
                await self.client.head_bucket(Bucket=self.bucket)
                self._check_error = None
            except Exception as error:
                self._check_error = error
        if self._check_error is not None:
            raise self._check_error
