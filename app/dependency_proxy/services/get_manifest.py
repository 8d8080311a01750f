"""Serve a manifest from the group's cache, revalidating tags against the upstream.

By tag: a HEAD upstream (free on Docker Hub's pull limit) decides whether the
cached bytes are still current; concurrent revalidations of one tag share one
upstream request; a per-group interval may skip the HEAD. By digest: immutable,
served from cache without contacting the upstream. When the upstream fails,
what is cached is served, marked stale.

Negative cache: an upstream 404 for a tag is remembered for
DOCKYARD_NEGATIVE_CACHE_SECONDS per (group, upstream credentials, image, tag),
so a CI loop asking for a tag that does not exist (yet) does not spend the
upstream's quota. It is never consulted across groups (another group's
credentials may see what this group's cannot); an answer from the upstream for
that key, or clearing the group's cache, forgets it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from app import clock, metrics
from app.dependency_proxy.bodies import record_served
from app.dependency_proxy.cache import PullThroughCache
from app.dependency_proxy.clearing import progress_of
from app.dependency_proxy.errors import ManifestUnknown, UpstreamDenied, UpstreamError
from app.dependency_proxy.models import CacheStatus, Manifest
from app.dependency_proxy.references import image_size, manifest_file_name
from app.dependency_proxy.services.authorize_pull import PullContext
from app.dependency_proxy.upstream import FetchedManifest
from app.dependency_proxy.upstream_auth import fingerprint_of

# read_at is refreshed at most this often: no database write per cached hit.
READ_AT_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class ManifestResult:
    content: bytes
    digest: str
    media_type: str
    cache: str  # HIT, MISS or STALE (X-Cache)

    @property
    def size(self) -> int:
        return len(self.content)


def _result(row: Manifest, cache: str) -> ManifestResult:
    return ManifestResult(
        content=bytes(row.content), digest=row.digest, media_type=row.content_type, cache=cache
    )


async def _cached(group_id: int, image: str, reference: str) -> Manifest | None:
    return (
        await Manifest.filter(
            group_id=group_id,
            file_name=manifest_file_name(image, reference),
            status=CacheStatus.DEFAULT,
        )
        .order_by("-id")
        .first()
    )


async def _touch(row: Manifest, *, checked: bool) -> None:
    now = clock.now()
    fields = []
    if now - row.read_at > READ_AT_RESOLUTION:
        row.read_at = now
        fields.append("read_at")
    if checked:
        row.checked_at = now
        fields.append("checked_at")
    if fields:
        await Manifest.filter(id=row.id).update(**{name: getattr(row, name) for name in fields})


async def _store(
    pull: PullContext, image: str, reference: str, fetched: FetchedManifest, row: Manifest | None
) -> Manifest:
    now = clock.now()
    values: dict[str, Any] = {
        "digest": fetched.digest,
        "content_type": fetched.media_type,
        "size": len(fetched.content),
        "image_size": image_size(fetched.content),
        "content": fetched.content,
        "read_at": now,
        "checked_at": now,
    }
    if row is not None and row.status == CacheStatus.DEFAULT:
        # The row may have been marked for deletion meanwhile: only update a live one.
        updated = await Manifest.filter(id=row.id, status=CacheStatus.DEFAULT).update(**values)
        if updated:
            await row.refresh_from_db()
            return row
    return await Manifest.create(
        group_id=pull.group.id,
        file_name=manifest_file_name(image, reference),
        image_name=image,
        reference=reference,
        **values,
    )


def _tag_key(pull: PullContext, image: str, tag: str) -> tuple[int, str, str, str]:
    """Who asks which tag: answers for one key never answer another."""
    return (pull.group.id, fingerprint_of(pull.credentials), image, tag)


async def _known_missing(cache: PullThroughCache, pull: PullContext, image: str, tag: str) -> bool:
    """Whether the upstream told this group (with these credentials) moments ago
    that it has no such tag, and the group's cache was not cleared since."""
    key = _tag_key(pull, image, tag)
    entry = cache.missing_tags.get(key)
    if entry is None or not entry.fresh:
        return False
    cleared = await progress_of(pull.group.id)
    if cleared is not None and cleared.started_at >= entry.stored_at:
        cache.missing_tags.drop(key)
        return False
    return True


async def _revalidate(
    cache: PullThroughCache, pull: PullContext, image: str, tag: str, row: Manifest | None
) -> ManifestResult:
    upstream = cache.upstream
    try:
        if row is not None:
            head = await upstream.head_manifest(image, tag, pull.credentials)
            if head.digest == row.digest and head.media_type == row.content_type:
                await _touch(row, checked=True)
                return _result(row, "HIT")
        fetched = await upstream.get_manifest(
            image, tag, pull.credentials, max_size=cache.manifest_max_bytes
        )
    except UpstreamError as error:
        # Unavailable, rate-limited: serve what we have. A refusal is not
        # papered over when nothing is cached.
        if row is not None and not isinstance(error, UpstreamDenied):
            await _touch(row, checked=False)
            return _result(row, "STALE")
        raise
    except ManifestUnknown:
        if cache.missing_tags.ttl > 0:
            cache.missing_tags.put(_tag_key(pull, image, tag), True)
        raise ManifestUnknown(f"{image}:{tag} does not exist upstream") from None
    cache.missing_tags.drop(_tag_key(pull, image, tag))
    stored = await _store(pull, image, tag, fetched, row)
    return _result(stored, "MISS")


async def _by_tag(
    cache: PullThroughCache, pull: PullContext, image: str, tag: str
) -> ManifestResult:
    row = await _cached(pull.group.id, image, tag)
    interval = pull.setting.revalidation_interval
    if (
        row is not None
        and interval > 0
        and clock.now() - row.checked_at < timedelta(seconds=interval)
    ):
        await _touch(row, checked=False)
        return _result(row, "HIT")
    if await _known_missing(cache, pull, image, tag):
        metrics.negative_cache_hits.inc()
        raise ManifestUnknown(
            f"{image}:{tag} does not exist upstream (it said so less than "
            f"{int(cache.missing_tags.ttl)} s ago; an Owner clearing the cache asks again now)"
        )
    # Only requests of this group with the same upstream credentials share an
    # answer: after a credentials change, the next request asks with the new ones.
    key = _tag_key(pull, image, tag)
    flight = cache.manifest_flights.get(key)
    if flight is None:
        flight = asyncio.ensure_future(_revalidate(cache, pull, image, tag, row))
        cache.manifest_flights[key] = flight
        flight.add_done_callback(lambda _: cache.manifest_flights.pop(key, None))
    # shield: one client going away must not cancel the others' revalidation.
    return await asyncio.shield(flight)


async def _by_digest(
    cache: PullThroughCache, pull: PullContext, image: str, digest: str
) -> ManifestResult:
    # Any live row of this image with that digest holds exactly those bytes (a
    # digest pull's own row, or a tag's): the digest was verified when it was stored.
    row = (
        await Manifest.filter(
            group_id=pull.group.id, image_name=image, digest=digest, status=CacheStatus.DEFAULT
        )
        .order_by("-id")
        .first()
    )
    if row is not None:
        await _touch(row, checked=False)
        return _result(row, "HIT")
    fetched = await cache.upstream.get_manifest(
        image, digest, pull.credentials, max_size=cache.manifest_max_bytes
    )
    stored = await _store(pull, image, digest, fetched, None)
    return _result(stored, "MISS")


async def get_manifest(
    cache: PullThroughCache,
    pull: PullContext,
    image: str,
    reference: str,
    *,
    send_body: bool = True,
) -> ManifestResult:
    """The manifest for `image` at a tag or digest, from cache or upstream.

    `send_body`: whether the caller sends the bytes (GET) or only the headers
    (HEAD); a sent body is counted here, as every served response is.
    """
    if reference.startswith("sha256:"):
        result = await _by_digest(cache, pull, image, reference)
    else:
        result = await _by_tag(cache, pull, image, reference)
    hit = result.cache != "MISS"
    cache.statistics.add(pull.group.id, **{"manifest_hits" if hit else "manifest_misses": 1})
    metrics.cache_requests.labels("manifest", result.cache.lower()).inc()
    if send_body:
        record_served(cache.statistics, pull.group.id, "cache" if hit else "upstream", result.size)
    return result
