"""What a group's cache holds and how well it works: the summary and the listings.

Counts and sizes follow GitLab: every row is counted whatever its status,
because a row pending destruction still occupies storage until the cleanup
worker deletes it; `pending_destruction_count` says how many are on their way
out, so a page can show it. They come from the counters the database keeps
(`cache_totals.py`), and listings are keyset pages on the `(group_id, id)`
index, so a request costs the same for ten rows or a million.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.accounts.policy import require_admin_reader
from app.accounts.principal import Principal
from app.config import Settings
from app.dependency_proxy.cache_totals import CacheTotals, totals_of, totals_of_groups
from app.dependency_proxy.clearing import ClearProgress, progress_of
from app.dependency_proxy.models import Blob, GroupSetting, ImageTtlGroupPolicy, Manifest
from app.dependency_proxy.statistics import CacheStatistics, read_counts
from app.dependency_proxy.upstream_lists import docker_hub_identity
from app.groups import policy
from app.groups.models import Group
from app.groups.policy import require_administer, require_read
from app.pagination import Page, paginate

# Manifests keep their bytes in the row; listings never load them.
MANIFEST_LISTING_FIELDS = (
    "id",
    "group_id",
    "file_name",
    "image_name",
    "reference",
    "digest",
    "image_size",
    "content_type",
    "size",
    "status",
    "pinned",
    "read_at",
    "checked_at",
    "created_at",
    "updated_at",
)


class RateLimitLike(Protocol):
    """What the upstream client's `rate_limit` offers (`upstream.RateLimit`)."""

    @property
    def limit(self) -> int | None: ...

    @property
    def remaining(self) -> int | None: ...


@dataclass(frozen=True)
class CacheSummary:
    image_count: int
    blob_count: int
    total_size_bytes: int
    manifest_hits: int
    manifest_misses: int
    blob_hits: int
    blob_misses: int
    bytes_from_cache: int
    bytes_from_upstream: int
    hit_ratio: float | None  # None until the group has served anything
    image_prefix: str
    enabled: bool
    identity: str | None  # only for Owners; the secret is never returned
    has_secret: bool  # only for Owners (False for everyone else)
    revalidation_interval: int
    size_limit_bytes: int | None  # None: no limit (`eviction.py`)
    ttl_enabled: bool
    ttl_days: int
    rate_limit_limit: int | None
    rate_limit_remaining: int | None
    pending_destruction_count: int
    can_administer: bool  # may change settings and clear the cache
    last_clear: ClearProgress | None  # the latest "clear cache", running or finished


def image_prefix(settings: Settings, group: Group) -> str:
    """What users put before the image name in `docker pull` (lower case)."""
    return f"{settings.registry_host}/{group.full_path.lower()}/dependency_proxy/containers"


async def get_cache_summary(
    principal: Principal,
    group: Group,
    statistics: CacheStatistics | None,
    settings: Settings,
    *,
    rate_limit: RateLimitLike | None = None,
) -> CacheSummary:
    """The group's cache at a glance (Guest or more)."""
    await require_read(principal, group)
    totals = await totals_of(group.id)
    counts = await read_counts(statistics, group.id)
    # Reading never creates the lazily built rows: unsaved ones carry the defaults.
    setting = await GroupSetting.get_or_none(group_id=group.id) or GroupSetting(group_id=group.id)
    ttl = await ImageTtlGroupPolicy.get_or_none(group_id=group.id) or ImageTtlGroupPolicy(
        group_id=group.id
    )
    owner = await policy.can_administer(principal, group)
    identity, has_secret = await docker_hub_identity(group, settings) if owner else (None, False)
    hits = counts.manifest_hits + counts.blob_hits
    lookups = hits + counts.manifest_misses + counts.blob_misses
    return CacheSummary(
        image_count=totals.manifest_count,
        blob_count=totals.blob_count,
        total_size_bytes=totals.total_size_bytes,
        manifest_hits=counts.manifest_hits,
        manifest_misses=counts.manifest_misses,
        blob_hits=counts.blob_hits,
        blob_misses=counts.blob_misses,
        bytes_from_cache=counts.bytes_from_cache,
        bytes_from_upstream=counts.bytes_from_upstream,
        hit_ratio=hits / lookups if lookups else None,
        image_prefix=image_prefix(settings, group),
        enabled=setting.enabled,
        identity=identity,
        has_secret=has_secret,
        revalidation_interval=setting.revalidation_interval,
        size_limit_bytes=setting.size_limit_bytes,
        ttl_enabled=ttl.enabled,
        ttl_days=ttl.ttl,
        rate_limit_limit=rate_limit.limit if rate_limit is not None else None,
        rate_limit_remaining=rate_limit.remaining if rate_limit is not None else None,
        pending_destruction_count=totals.leaving_count,
        can_administer=owner,
        last_clear=await progress_of(group.id),
    )


async def get_owner_cache_summary(
    principal: Principal,
    group: Group,
    statistics: CacheStatistics | None,
    settings: Settings,
    *,
    rate_limit: RateLimitLike | None = None,
    what: str = "change its settings",
) -> CacheSummary:
    """The summary, for Owners only (the settings page, the clear-cache confirmation)."""
    await require_administer(principal, group, what)
    return await get_cache_summary(principal, group, statistics, settings, rate_limit=rate_limit)


async def list_manifests(
    principal: Principal,
    group: Group,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Page[Manifest]:
    """The group's cached manifests, newest first (without their bytes)."""
    await require_read(principal, group)
    query = Manifest.filter(group_id=group.id).only(*MANIFEST_LISTING_FIELDS)
    return await paginate(query, first=first, after=after, last=last, before=before)


async def list_blobs(
    principal: Principal,
    group: Group,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Page[Blob]:
    """The group's cached blobs, newest first."""
    await require_read(principal, group)
    query: Any = Blob.filter(group_id=group.id)
    return await paginate(query, first=first, after=after, last=last, before=before)


async def get_cache_totals_of_groups(
    principal: Principal, groups: Sequence[Group]
) -> dict[int, CacheTotals]:
    """What each group's cache holds (admin area): one indexed query for the lot."""
    require_admin_reader(principal, "see every group's cache")
    return await totals_of_groups(group.id for group in groups)


async def get_image_ttl_policy(principal: Principal, group: Group) -> ImageTtlGroupPolicy | None:
    """The group's TTL policy for Owners (an unsaved row with the defaults when it was
    never set); None for anyone else, as GitLab's field is for those who administer."""
    if not await policy.can_administer(principal, group):
        return None
    return await ImageTtlGroupPolicy.get_or_none(group_id=group.id) or ImageTtlGroupPolicy(
        group_id=group.id
    )
