"""Download leases on a real PostgreSQL (`downloads/leases.py`), and what reads them:
one holder per digest however many ask at once, takeover only after expiry, cleanup
that keeps bytes a committing instance is about to reference (the race with clear
cache), the sweep of incomplete uploads that spares a live instance's upload (real
SeaweedFS), and one live row per group and digest with many writers."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tortoise.backends.base import executor as base_executor

from app import db
from app.accounts import records as accounts
from app.accounts.principal import Principal
from app.config import load_settings
from app.dependency_proxy.cache_totals import totals_of
from app.dependency_proxy.cleanup import run_cleanup_once
from app.dependency_proxy.downloads.leases import Acquired, Holder, PostgresLeases
from app.dependency_proxy.models import Blob, CacheStatus, Manifest
from app.dependency_proxy.rows import ManifestValues, record_blob, store_manifest
from app.dependency_proxy.services.clear_cache import clear_cache
from app.dependency_proxy.storage import write_blob
from app.dependency_proxy.storage.local import LocalBlobStore
from app.groups import records as groups
from app.groups.models import AccessLevel
from tests.support.cache_rows import digest_of
from tests.support.postgres import PostgresServer, postgres_bin
from tests.support.seaweedfs import SeaweedS3
from tests.unit.dependency_proxy.test_storage_contract import s3_store

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed"),
]


@pytest.fixture
async def database(
    postgres: PostgresServer,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[str]:
    # Tortoise caches each model's INSERT per connection name: SQLite tests in this
    # process left "default"'s with `?` placeholders.
    monkeypatch.setattr(base_executor, "EXECUTOR_CACHE", {})
    url = postgres.create_database(request.node.name.removeprefix("test_")[:40])
    settings = load_settings({}, data_dir=tmp_path, database_url=url)
    await db.migrate(settings)
    await db.init_db(settings)
    try:
        yield url
    finally:
        await db.close_db()


async def expire(digest: str) -> None:
    """Make the digest's lease look like its holder died long ago."""
    from app.dependency_proxy import sql

    await sql.execute(
        "UPDATE dependency_proxy_download_leases SET expires_at = now() - interval '1 minute'"
        " WHERE digest = $1",
        digest,
    )


@pytest.mark.usefixtures("database")
async def test_one_holder_per_digest_until_its_lease_lapses() -> None:
    digest = digest_of("layer")
    instances = [PostgresLeases(f"http://10.0.0.{n}:5000", 10) for n in range(8)]

    outcomes = await asyncio.gather(*(lease.acquire(digest) for lease in instances))

    winners = [n for n, outcome in enumerate(outcomes) if isinstance(outcome, Acquired)]
    assert len(winners) == 1 and not outcomes[winners[0]].took_over  # type: ignore[union-attr]
    winner = instances[winners[0]]
    for outcome in outcomes:
        if not isinstance(outcome, Acquired):
            assert outcome == Holder(holder=winner.holder, address=winner.address)
    assert await winner.renew(digest)
    assert await instances[0].leased([digest, digest_of("other")]) == {digest}

    await expire(digest)  # the holder died: no renewal for longer than the lease
    assert await winner.leased([digest]) == set()
    taker = next(lease for lease in instances if lease is not winner)
    assert await taker.acquire(digest) == Acquired(took_over=True)
    assert not await winner.renew(digest)  # the old holder learns it lost the lease
    await winner.release(digest)  # and cannot release the new holder's lease
    assert await taker.leased([digest]) == {digest}
    await taker.release(digest)
    assert await taker.leased([digest]) == set()
    assert await winner.acquire(digest) == Acquired(took_over=False)
    # A row of its own it failed to release never makes a process follow itself.
    assert await winner.acquire(digest) == Acquired(took_over=True)
    assert isinstance(await taker.acquire(digest), Holder)


@dataclass
class CommitsWhileCleanupLooks:
    """Downloads as cleanup sees them, while another instance commits the digest for its
    own group: the moment cleanup asks which digests are in flight, that instance
    records its row and releases its lease (the tightest interleaving)."""

    leases: PostgresLeases
    committing: PostgresLeases
    group_id: int
    digest: str
    size: int

    async def in_flight_of(self, digests: Sequence[str]) -> set[str]:
        await record_blob(self.group_id, self.digest, self.size)
        await self.committing.release(self.digest)
        return await self.leases.leased(set(digests))


@dataclass
class CleanupCache:
    store: LocalBlobStore
    downloads: CommitsWhileCleanupLooks | NoDownloads
    # The size limits' part of the cache (cleanup.Cache): no limits here.
    disk_budget: int = 0
    eviction_wanted: asyncio.Event = field(default_factory=asyncio.Event)
    space_needed: int = 0
    usage: tuple[int, int] | None = None

    async def sweep(self) -> None:
        """Nothing to sweep here."""


@dataclass
class NoDownloads:
    async def in_flight_of(self, digests: Sequence[str]) -> set[str]:
        return set()


@pytest.mark.usefixtures("database")
async def test_clearing_a_cache_never_deletes_bytes_another_instance_is_committing(
    tmp_path: Path,
) -> None:
    store = LocalBlobStore(tmp_path / "data")
    content = secrets.token_bytes(4096)
    digest = "sha256:" + hashlib.sha256(content).hexdigest()

    async def one() -> AsyncIterator[bytes]:
        yield content

    await write_blob(store, digest, one())
    acme, other = await groups.create_group("acme"), await groups.create_group("other")
    user = await accounts.create_user("olga", "olga@example.com", "olga-password-1")
    await groups.add_member(acme, user, AccessLevel.OWNER)
    await record_blob(acme.id, digest, len(content))
    committing = PostgresLeases("http://b.internal:5000", 10)
    assert isinstance(await committing.acquire(digest), Acquired)  # B downloads it for `other`
    await clear_cache(Principal(user=user), acme)
    cache = CleanupCache(
        store,
        CommitsWhileCleanupLooks(
            PostgresLeases("http://a.internal:5000", 10), committing, other.id, digest, len(content)
        ),
    )

    result = await run_cleanup_once(cache)

    assert result.blobs_deleted == 1  # acme's row went
    assert await store.stat(digest) == len(content)  # the bytes `other` now holds stayed
    rows = await Blob.filter(digest=digest).values_list("group_id", "status")
    assert rows == [(other.id, CacheStatus.DEFAULT)]

    # With no row left anywhere and no download, the bytes go.
    await Blob.filter(group_id=other.id).update(status=CacheStatus.PENDING_DESTRUCTION)
    result = await run_cleanup_once(CleanupCache(store, NoDownloads()))
    assert result.files_deleted == 1 and await store.stat(digest) is None


async def test_the_upload_sweep_spares_a_live_instances_upload_and_aborts_a_dead_ones(
    database: str, s3_credentials: SeaweedS3, tmp_path: Path
) -> None:
    prefix = f"sweep-{secrets.token_hex(4)}/"
    live_digest, dead_digest = digest_of("live upload"), digest_of("dead upload")
    writer = s3_store(s3_credentials, tmp_path / "b", prefix)  # instance B, uploading
    sweeper = s3_store(s3_credentials, tmp_path / "a", prefix)  # instance A, sweeping
    leases_b = PostgresLeases("http://b.internal:5000", 10)
    leases_a = PostgresLeases("http://a.internal:5000", 10)
    await writer.start()
    await sweeper.start()
    try:
        assert isinstance(await leases_b.acquire(live_digest), Acquired)
        await writer.create_upload(writer.key(live_digest))
        await writer.create_upload(writer.key(dead_digest))  # B held its lease, then died

        swept = await sweeper.sweep_incomplete(0, writing=leases_a.leased)

        assert swept == 1
        remaining = [key for key, _, _ in await sweeper.incomplete_uploads()]
        assert remaining == [writer.key(live_digest)]
        # Once B's lease lapses, its upload is a dead writer's too.
        await expire(live_digest)
        assert await sweeper.sweep_incomplete(0, writing=leases_a.leased) == 1
        assert await sweeper.incomplete_uploads() == []
    finally:
        await writer.aclose()
        await sweeper.aclose()


@pytest.mark.usefixtures("database")
async def test_many_writers_keep_one_live_row_per_blob_and_per_tag() -> None:
    group = await groups.create_group("acme")
    digest = digest_of("layer")
    await asyncio.gather(*(record_blob(group.id, digest, 10) for _ in range(20)))
    values = [
        ManifestValues(
            file_name="library/alpine:3.19.json",
            image_name="library/alpine",
            reference="3.19",
            digest=digest_of(f"manifest {n}"),
            content_type="application/vnd.oci.image.manifest.v1+json",
            content=b"{}" + b" " * n,
            image_size=None,
        )
        for n in range(20)
    ]
    await asyncio.gather(*(store_manifest(group.id, value) for value in values))

    assert await Blob.filter(group_id=group.id, digest=digest).count() == 1
    rows = await Manifest.filter(group_id=group.id)
    assert len(rows) == 1
    # The totals the triggers keep follow the upserts (insert once, then size changes).
    totals = await totals_of(group.id)
    assert (totals.manifest_count, totals.manifest_bytes) == (1, rows[0].size)
    assert (totals.blob_count, totals.blob_bytes) == (1, 10)
