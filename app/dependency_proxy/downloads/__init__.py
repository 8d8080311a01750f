"""Download-once: one upstream fetch per blob digest, however many clients ask.

The protocol (DESIGN §4 "A blob miss"), for any `BlobStore`:

1. A committed blob is served from the store (`BlobDownloads.open` looks first).
2. Otherwise one leader per digest is elected. In one process, the first
   caller starts the download in a detached task that no client owns, so a
   client that disconnects never cancels what the cache or other clients still
   want. Among the processes of one machine, `SpoolFileCoordinator` elects the
   leader: it creates `spool/<hex>.part` exclusively and holds an exclusive
   `flock` on it for the whole download (`locks.py`: if another process can take
   the lock, the leader is gone), and writes a `<hex>.meta` sidecar announcing
   the size.
3. The leader writes every chunk into the spool file through the store's
   `Staging` (`storage/__init__.py`), which hashes it; the S3 store also uploads
   completed parts while the rest arrives. At the end, `Staging.commit` checks
   the sha256 and only then makes the blob visible under its key (local: rename
   the spool into place; S3: complete the multipart upload). The leader marks
   the sidecar committed, awaits `on_commit(size)` (the caller records its
   row), and only then releases the spool: until then cleanup sees the digest
   in flight and leaves its bytes alone.
4. Every client, the one that triggered the download included, gets a
   `BlobReader` that tails the spool file as it grows: in-process readers are
   woken by an event, readers in other processes poll the file and learn the
   outcome from the lock and the sidecar. Readers hold back the last
   `chunk_size` bytes until the digest is verified, so a failed download
   reaches a client as a truncated body (`DownloadFailed` mid-iteration), never
   as a complete wrong blob; a failed download leaves nothing in the store.

Across instances (PostgreSQL + S3), `ClusterDownloads` (`cluster.py`) adds one
step between 2 and 3: the machine's leader takes the digest's lease in
PostgreSQL (`leases.py`) before it fetches, or, if another instance holds it,
relays that instance's growing spool from its internal endpoint
(`internal.py`) into its own spool, which its readers tail as in 4.
"""

from app.dependency_proxy.downloads.coordinator import (
    BlobDownloads,
    OnCommit,
    Reader,
    StartDownload,
    UpstreamBlob,
)
from app.dependency_proxy.downloads.spool import BlobReader, StoredReader

__all__ = [
    "BlobDownloads",
    "BlobReader",
    "OnCommit",
    "Reader",
    "StartDownload",
    "StoredReader",
    "UpstreamBlob",
]
