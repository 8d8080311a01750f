"""The pull-through cache: one object owning everything a pull needs.

Modelled on distribution's `registry/proxy` (a blob store whose misses go
upstream): the blob store (local disk or S3), the upstream client, the
download coordinator (one upstream download per digest), the blob grants (who
may read shared bytes: `grants.py`), the single-flight of manifest
revalidations, and the per-group statistics its bodies record into. The
services (`services/get_blob.py`, `services/get_manifest.py`) are handed this
object; the composition root builds one per process and closes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.dependency_proxy.downloads import BlobDownloads
from app.dependency_proxy.downloads.cluster import ClusterDownloads
from app.dependency_proxy.downloads.leases import PostgresLeases
from app.dependency_proxy.grants import BlobGrants
from app.dependency_proxy.listings import FetchedReferrers, TagPage
from app.dependency_proxy.short_cache import ShortCache
from app.dependency_proxy.statistics import CacheStatistics
from app.dependency_proxy.storage import BlobStore, open_store
from app.dependency_proxy.upstream import UpstreamClient

if TYPE_CHECKING:
    from app.config import Settings

log = logging.getLogger("dockyard.cache")

#: Incomplete multipart uploads older than this belong to a writer that died.
INCOMPLETE_UPLOAD_AGE = 3600.0
#: With download leases: an upload whose digest nobody holds a lease for is a dead
#: writer's once it is this old (a tool such as a storage migration holds no lease).
UNLEASED_UPLOAD_AGE = 300.0


@dataclass
class PullThroughCache:
    store: BlobStore
    upstream: UpstreamClient
    downloads: BlobDownloads
    manifest_max_bytes: int
    grants: BlobGrants = field(default_factory=BlobGrants)
    statistics: CacheStatistics = field(default_factory=CacheStatistics)
    # Revalidations of one tag in flight, shared by concurrent requests of one
    # group with the same upstream credentials (see services/get_manifest.py).
    manifest_flights: dict[Any, asyncio.Future[Any]] = field(default_factory=dict)
    # With several instances (PostgreSQL + S3): the download leases.
    cluster: ClusterDownloads | None = None
    # Clients of the groups' other upstreams, one per (URL, Docker Hub rule):
    # each keeps its own connection pool and token store.
    clients: dict[tuple[str, bool], UpstreamClient] = field(default_factory=dict)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    # Tag list pages, tags the upstreams said they do not have, and referrers, per
    # group and upstreams asked with their credentials (`short_cache.py`; services/list_tags.py,
    # get_manifest.py, get_referrers.py).
    tag_lists: ShortCache[TagPage] = field(default_factory=lambda: ShortCache(60))
    missing_tags: ShortCache[bool] = field(default_factory=lambda: ShortCache(60))
    referrer_lists: ShortCache[FetchedReferrers] = field(default_factory=lambda: ShortCache(60))
    # DOCKYARD_DISK_BUDGET (0: none); an admin's instance setting overrides it.
    disk_budget: int = 0
    # Set when a download found the disk full: the cleanup worker runs the eviction
    # pass at once instead of waiting for its interval (`cleanup.py`).
    eviction_wanted: asyncio.Event = field(default_factory=asyncio.Event)
    # Bytes the last full-disk failures needed beyond what was free (the eviction
    # pass frees at least that much even under every limit), reset by the pass.
    space_needed: int = 0
    # What the last eviction pass measured, for the metrics: (cached bytes, budget).
    usage: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self.downloads.on_out_of_space = self.want_space

    def want_space(self, needed: int) -> None:
        """A download failed for want of `needed` bytes: evict now."""
        self.space_needed = max(self.space_needed, needed)
        self.eviction_wanted.set()

    @classmethod
    def from_settings(cls, settings: Settings) -> PullThroughCache:
        store = open_store(settings)
        cluster = None
        if settings.scales_out:
            # Several instances may share the database and the bucket: one download
            # per digest among all of them (downloads/cluster.py).
            leases = PostgresLeases(settings.internal_url, settings.download_lease_seconds)
            cluster = ClusterDownloads(
                leases,
                store,
                settings.secret_key,
                read_timeout=2 * settings.upstream_read_timeout,
            )
        return cls(
            store=store,
            upstream=UpstreamClient(
                settings.upstream_url,
                connect_timeout=settings.upstream_connect_timeout,
                read_timeout=settings.upstream_read_timeout,
            ),
            downloads=BlobDownloads(store, max_size=settings.blob_max_bytes, cluster=cluster),
            manifest_max_bytes=settings.manifest_max_bytes,
            cluster=cluster,
            connect_timeout=settings.upstream_connect_timeout,
            read_timeout=settings.upstream_read_timeout,
            tag_lists=ShortCache(settings.tags_list_cache_seconds),
            missing_tags=ShortCache(settings.negative_cache_seconds),
            referrer_lists=ShortCache(settings.tags_list_cache_seconds),
            disk_budget=settings.disk_budget,
        )

    def client_for(self, url: str, docker_hub: bool) -> UpstreamClient:
        """The HTTP client of an upstream registry (the instance's default one, or another)."""
        url = url.rstrip("/")
        if url == self.upstream.base_url and docker_hub == self.upstream.docker_hub:
            return self.upstream
        client = self.clients.get((url, docker_hub))
        if client is None:
            client = UpstreamClient(
                url,
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                docker_hub=docker_hub,
            )
            self.clients[(url, docker_hub)] = client
        return client

    async def start(self) -> None:
        """Connect the store; remove what a crashed process left behind."""
        await self.store.start()
        await self.sweep()

    async def sweep(self) -> None:
        """What dead writers left: spool files on this machine, uploads in the store."""
        await self.downloads.remove_stale_spools()
        try:
            if self.cluster is None:
                await self.store.sweep_incomplete(INCOMPLETE_UPLOAD_AGE)
            else:
                # The leases tell a live writer's upload, however old, from a dead one's.
                await self.store.sweep_incomplete(
                    UNLEASED_UPLOAD_AGE, writing=self.cluster.leases.leased
                )
        except Exception:  # the store may be down: the next sweep retries
            log.warning("sweeping incomplete uploads failed", exc_info=True)

    async def aclose(self) -> None:
        await self.downloads.aclose()
        await self.upstream.aclose()
        for client in self.clients.values():
            await client.aclose()
        await self.store.aclose()

    def upstream_head(
        self, client: UpstreamClient, image: str, digest: str, credentials: Any
    ) -> Callable[[], Awaitable[int]]:
        """An upstream HEAD of the blob with these credentials, to run later (a grant check)."""

        async def head() -> int:
            return await client.head_blob(image, digest, credentials)

        return head
