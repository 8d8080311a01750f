"""Serve a manifest from the group's cache, revalidating tags against the upstream.

By tag: a HEAD upstream (free on Docker Hub's pull limit) decides whether the
cached bytes are still current; concurrent revalidations of one tag share one
upstream request; a per-group interval may skip the HEAD. By digest: immutable,
served from cache without contacting the upstream. When the upstream fails,
what is cached is served, marked stale.

Negative cache: when the group's upstreams answered 404 for a tag, that is
remembered for DOCKYARD_NEGATIVE_CACHE_SECONDS per (group, upstreams asked
with their credentials, image, tag), so a CI loop asking for a tag that does
not exist (yet) does not spend the upstreams' quota. It is never consulted
across groups (another group's credentials or upstreams may see what this
group's cannot); an answer from the upstream for that key, or clearing the
group's cache, forgets it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app import clock, local_reads, metrics
from app.dependency_proxy.bodies import record_served
from app.dependency_proxy.cache import PullThroughCache
from app.dependency_proxy.clearing import progress_of
from app.dependency_proxy.errors import (
    DependencyProxyError,
    ManifestUnknown,
    UpstreamDenied,
    UpstreamError,
)
from app.dependency_proxy.models import CacheStatus, Manifest
from app.dependency_proxy.references import image_size, manifest_file_name
from app.dependency_proxy.rows import ManifestValues, store_manifest
from app.dependency_proxy.services.authorize_pull import PullContext
from app.dependency_proxy.upstream import FetchedManifest
from app.dependency_proxy.upstreams import (
    FAILOVER_ERRORS,
    Candidate,
    candidates,
    first_failure,
    remember,
    source_key,
    split_host,
)
from app.dependency_proxy.usage import counted_for_group

log = logging.getLogger("dockyard.cache")

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


def from_docker_hub(pull: PullContext, image: str) -> bool:
    """Whether the image would come from a Docker Hub upstream: the one its host names,
    else the group's first upstream (where an unqualified name is asked first)."""
    host, _ = split_host(image)
    if host is not None:
        return any(entry.docker_hub and entry.answers_to(host) for entry in pull.upstreams)
    return bool(pull.upstreams) and pull.upstreams[0].docker_hub


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
    if row is not None and row.status == CacheStatus.DEFAULT:
        # The row may have been marked for deletion meanwhile: only update a live one.
        now = clock.now()
        updated = await Manifest.filter(id=row.id, status=CacheStatus.DEFAULT).update(
            digest=fetched.digest,
            content_type=fetched.media_type,
            size=len(fetched.content),
            image_size=image_size(fetched.content),
            content=fetched.content,
            read_at=now,
            checked_at=now,
        )
        if updated:
            await row.refresh_from_db()
            return row
    # Another instance may have stored the same tag a moment ago: the database
    # keeps one live row, and this newer fetch overwrites it.
    values = ManifestValues(
        file_name=manifest_file_name(image, reference),
        image_name=image,
        reference=reference,
        digest=fetched.digest,
        content_type=fetched.media_type,
        content=fetched.content,
        image_size=image_size(fetched.content),
    )
    return await store_manifest(pull.group.id, values)


def _tag_key(pull: PullContext, found: list[Candidate], image: str, tag: str) -> tuple[Any, ...]:
    """Who asks which tag of which upstreams: answers for one key never answer another."""
    return (pull.group.id, source_key(found), image, tag)


async def _known_missing(cache: PullThroughCache, key: tuple[Any, ...], group_id: int) -> bool:
    """Whether the upstreams told this group (with these credentials) moments ago that
    they have no such tag, and the group's cache was not cleared since."""
    entry = cache.missing_tags.get(key)
    if entry is None or not entry.fresh:
        return False
    cleared = await progress_of(group_id)
    if cleared is not None and cleared.started_at >= entry.stored_at:
        cache.missing_tags.drop(key)
        return False
    return True


async def _fetch_cold(
    cache: PullThroughCache, pull: PullContext, image: str, reference: str, found: list[Candidate]
) -> ManifestResult:
    """Nothing cached: ask the upstreams in order; the first that has it wins and is
    remembered for the image."""
    errors: list[DependencyProxyError] = []
    for candidate in found:
        client = cache.client_for(candidate.upstream.url, candidate.upstream.docker_hub)
        try:
            fetched = await client.get_manifest(
                candidate.image,
                reference,
                candidate.upstream.credentials,
                max_size=cache.manifest_max_bytes,
            )
        except FAILOVER_ERRORS as error:
            if len(found) > 1:
                log.info(
                    "%s:%s not served by upstream %s: %s",
                    image,
                    reference,
                    candidate.upstream.name,
                    error.message,
                )
            errors.append(error)
            continue
        if len(found) > 1:
            await remember(pull.group.id, image, candidate.upstream)
        stored = await _store(pull, image, reference, fetched, None)
        return _result(stored, "MISS")
    failure = first_failure(errors)
    if isinstance(failure, ManifestUnknown):
        where = "upstream" if len(found) == 1 else f"on any of {len(found)} upstreams"
        raise ManifestUnknown(f"{image}:{reference} does not exist {where}")
    raise failure


async def _revalidate(
    cache: PullThroughCache,
    pull: PullContext,
    image: str,
    tag: str,
    row: Manifest | None,
    found: list[Candidate],
) -> ManifestResult:
    key = _tag_key(pull, found, image, tag)
    try:
        result = await _ask_upstream(cache, pull, image, tag, row, found)
    except ManifestUnknown:
        if cache.missing_tags.ttl > 0:
            cache.missing_tags.put(key, True)
        raise
    cache.missing_tags.drop(key)
    return result


async def _ask_upstream(
    cache: PullThroughCache,
    pull: PullContext,
    image: str,
    tag: str,
    row: Manifest | None,
    found: list[Candidate],
) -> ManifestResult:
    if row is None:
        return await _fetch_cold(cache, pull, image, tag, found)
    # Cached: the image's upstream (remembered, or the first) revalidates it; when
    # it fails, the cached bytes are served (stale-if-error), never another's.
    candidate = found[0]
    upstream = cache.client_for(candidate.upstream.url, candidate.upstream.docker_hub)
    credentials = candidate.upstream.credentials
    try:
        head = await upstream.head_manifest(candidate.image, tag, credentials)
        if head.digest == row.digest and head.media_type == row.content_type:
            await _touch(row, checked=True)
            return _result(row, "HIT")
        fetched = await upstream.get_manifest(
            candidate.image, tag, credentials, max_size=cache.manifest_max_bytes
        )
    except UpstreamError as error:
        # Unavailable, rate-limited: serve what we have. A refusal is not
        # papered over.
        if not isinstance(error, UpstreamDenied):
            await _touch(row, checked=False)
            return _result(row, "STALE")
        raise
    except ManifestUnknown:
        raise ManifestUnknown(f"{image}:{tag} does not exist upstream") from None
    stored = await _store(pull, image, tag, fetched, row)
    return _result(stored, "MISS")


_FRESH_BY_TAG = (
    "SELECT id, content, content_type, digest, read_at FROM dependency_proxy_manifests "
    "WHERE group_id = ? AND file_name = ? AND status = "
    f"{int(CacheStatus.DEFAULT)} AND checked_at > ? ORDER BY id DESC LIMIT 1"
)


async def _fresh_by_tag(
    group_id: int, image: str, tag: str, interval: int
) -> ManifestResult | None:
    """The tag's row when it was checked upstream less than `interval` seconds ago, read
    on the event loop; None when there is none, or this database needs the ORM."""
    now = clock.now()
    since = now - timedelta(seconds=interval)
    try:
        found = local_reads.fetch_one(
            _FRESH_BY_TAG, (group_id, manifest_file_name(image, tag), since.isoformat(sep=" "))
        )
    except local_reads.Unavailable:
        return None
    if found is None:
        return None
    ident, content, media_type, digest, read_at = found
    return await _local_hit(ident, content, media_type, digest, read_at)


def _revalidation_interval(pull: PullContext, candidate: Candidate) -> timedelta:
    hours = candidate.upstream.cache_validity_hours
    if hours is not None:
        return timedelta(hours=hours)
    return timedelta(seconds=pull.setting.revalidation_interval)


async def _by_tag(
    cache: PullThroughCache, pull: PullContext, image: str, tag: str
) -> ManifestResult:
    if (
        all(entry.cache_validity_hours is None for entry in pull.upstreams)
        and pull.setting.revalidation_interval > 0
    ):
        # Every upstream follows the group's interval, whichever one serves the
        # image: the tag's row, if fresh, is read without asking which (one read).
        interval = pull.setting.revalidation_interval
        if fresh := await _fresh_by_tag(pull.group.id, image, tag, interval):
            return fresh
    found = await candidates(pull.group, pull.upstreams, image)
    row = await _cached(pull.group.id, image, tag)
    validity = _revalidation_interval(pull, found[0])
    if row is not None and validity and clock.now() - row.checked_at < validity:
        await _touch(row, checked=False)
        return _result(row, "HIT")
    # Only requests of this group with the same upstreams and credentials share an
    # answer: after a credentials change, the next request asks with the new ones.
    key = _tag_key(pull, found, image, tag)
    if await _known_missing(cache, key, pull.group.id):
        metrics.negative_cache_hits.inc()
        raise ManifestUnknown(
            f"{image}:{tag} does not exist upstream (it said so less than "
            f"{int(cache.missing_tags.ttl)} s ago; an Owner clearing the cache asks again now)"
        )
    flight = cache.manifest_flights.get(key)
    if flight is None:
        flight = asyncio.ensure_future(_revalidate(cache, pull, image, tag, row, found))
        cache.manifest_flights[key] = flight
        flight.add_done_callback(lambda _: cache.manifest_flights.pop(key, None))
    # shield: one client going away must not cancel the others' revalidation.
    return await asyncio.shield(flight)


# The hit by digest, read on the event loop where the database allows it
# (app/local_reads.py): the one query of the hottest path, without the ORM.
_HIT_BY_DIGEST = (
    "SELECT id, content, content_type, read_at FROM dependency_proxy_manifests "
    "WHERE group_id = ? AND image_name = ? AND digest = ? "
    f"AND status = {int(CacheStatus.DEFAULT)} ORDER BY id DESC LIMIT 1"
)


async def _hit_by_digest(group_id: int, image: str, digest: str) -> ManifestResult | None:
    # Any live row of this image with that digest holds exactly those bytes (a
    # digest pull's own row, or a tag's): the digest was verified when it was stored.
    try:
        found = local_reads.fetch_one(_HIT_BY_DIGEST, (group_id, image, digest))
    except local_reads.Unavailable:
        row = (
            await Manifest.filter(
                group_id=group_id, image_name=image, digest=digest, status=CacheStatus.DEFAULT
            )
            .order_by("-id")
            .first()
        )
        if row is None:
            return None
        await _touch(row, checked=False)
        return _result(row, "HIT")
    if found is None:
        return None
    ident, content, media_type, read_at = found
    return await _local_hit(ident, content, media_type, digest, read_at)


async def _local_hit(
    ident: int, content: bytes, media_type: str, digest: str, read_at: object
) -> ManifestResult:
    """A HIT from a row read on the event loop; its read_at moves on only when it is
    older than READ_AT_RESOLUTION (one write per row per interval, not per pull)."""
    now = clock.now()
    if _older_than(read_at, now - READ_AT_RESOLUTION):
        await Manifest.filter(id=ident).update(read_at=now)
    return ManifestResult(content=bytes(content), digest=digest, media_type=media_type, cache="HIT")


def _older_than(stored: object, moment: datetime) -> bool:
    """SQLite keeps Tortoise's datetimes as ISO text; anything unreadable counts as old."""
    try:
        return datetime.fromisoformat(str(stored)) < moment
    except (ValueError, TypeError):  # TypeError: a naive time from elsewhere
        return True


async def _by_digest(
    cache: PullThroughCache, pull: PullContext, image: str, digest: str
) -> ManifestResult:
    hit = await _hit_by_digest(pull.group.id, image, digest)
    if hit is not None:
        return hit
    found = await candidates(pull.group, pull.upstreams, image)
    return await _fetch_cold(cache, pull, image, digest, found)


@counted_for_group
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
    # Docker Hub counts a manifest GET as a pull (a HEAD is free): a GET served
    # from the cache for an image of a Docker Hub upstream is a pull saved.
    cache.statistics.usage.record_pull(
        pull.group.id, image, hit=hit, docker_hub=send_body and from_docker_hub(pull, image)
    )
    metrics.cache_requests.labels("manifest", result.cache.lower()).inc()
    if send_body:
        record_served(cache.statistics, pull.group.id, "cache" if hit else "upstream", result.size)
    return result
