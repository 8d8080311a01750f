"""The OCI 1.1 referrers of a manifest (signatures, SBOMs, attestations).

Passed through from the image's upstream's referrers API with that upstream's
credentials (the image's remembered upstream, else the group's upstreams in
order: `upstreams.image_sources`). An upstream without that API answers 404;
then the OCI tag schema is the fallback on the same upstream: the referrers
are the image index tagged `sha256-<hex>` (what cosign, oras and notation push
to such registries), and no such tag means no referrers (an empty index, never
a 404, as the spec says). The `artifactType` filter is applied here when the
upstream did not apply it. When several upstreams are asked, the first with
referrers answers; none with any gives an empty index.

Answers are kept like tag list pages (`short_cache.py`, per group and
upstreams with their credentials, `DOCKYARD_TAGS_LIST_CACHE_SECONDS`), and
served stale when the upstreams fail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app import metrics
from app.dependency_proxy.cache import PullThroughCache
from app.dependency_proxy.errors import (
    DependencyProxyError,
    ManifestUnknown,
    UpstreamDenied,
    UpstreamError,
)
from app.dependency_proxy.listings import OCI_INDEX, FetchedReferrers
from app.dependency_proxy.services.authorize_pull import PullContext
from app.dependency_proxy.upstreams import (
    FAILOVER_ERRORS,
    Candidate,
    first_failure,
    image_sources,
    source_key,
)
from app.dependency_proxy.usage import counted_for_group

FILTER = "artifactType"


@dataclass(frozen=True)
class Referrers:
    content: bytes  # an OCI image index
    filters_applied: str  # OCI-Filters-Applied: "artifactType" or ""
    cache: str  # HIT, MISS or STALE (X-Cache)

    @property
    def media_type(self) -> str:
        return OCI_INDEX


def fallback_tag(digest: str) -> str:
    """The OCI tag schema's tag for the referrers of `digest`: `sha256-<hex>`."""
    return digest.replace(":", "-", 1)


def _index(descriptors: list[Any]) -> bytes:
    document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    return json.dumps(document, separators=(",", ":")).encode()


def _descriptors(content: bytes) -> list[Any]:
    try:
        manifests = json.loads(content).get("manifests")
    except (ValueError, AttributeError):
        return []
    return [d for d in manifests if isinstance(d, dict)] if isinstance(manifests, list) else []


def _filtered(fetched: FetchedReferrers, artifact_type: str | None) -> tuple[bytes, str]:
    if artifact_type is None or FILTER in fetched.filters_applied.split(","):
        return fetched.content, fetched.filters_applied
    kept = [d for d in _descriptors(fetched.content) if d.get("artifactType") == artifact_type]
    return _index(kept), FILTER


async def _from_upstream(
    cache: PullThroughCache, candidate: Candidate, digest: str, artifact_type: str | None
) -> FetchedReferrers | None:
    """One upstream's referrers of `digest`; None when it has none (no API, no tag)."""
    client = cache.client_for(candidate.upstream.url, candidate.upstream.docker_hub)
    credentials = candidate.upstream.credentials
    fetched = await client.get_referrers(
        candidate.image, digest, credentials, artifact_type=artifact_type
    )
    if fetched is not None:
        return fetched
    try:
        tagged = await client.get_manifest(
            candidate.image, fallback_tag(digest), credentials, max_size=cache.manifest_max_bytes
        )
    except ManifestUnknown:
        return None
    # Whatever else sits under that tag is no referrers index: none then.
    return FetchedReferrers(_index(_descriptors(tagged.content)), OCI_INDEX, "")


async def _from_upstreams(
    cache: PullThroughCache, found: list[Candidate], digest: str
) -> FetchedReferrers:
    """The first upstream with referrers answers; all without any: an empty index. One
    that fails makes the whole answer fail (stale then), not silently empty."""
    errors: list[DependencyProxyError] = []
    for candidate in found:
        try:
            fetched = await _from_upstream(cache, candidate, digest, None)
        except FAILOVER_ERRORS as error:
            errors.append(error)
            continue
        if fetched is not None and (len(found) == 1 or _descriptors(fetched.content)):
            return fetched
    if errors:
        raise first_failure(errors)
    return FetchedReferrers(_index([]), OCI_INDEX, "")


@counted_for_group
async def get_referrers(
    cache: PullThroughCache,
    pull: PullContext,
    image: str,
    digest: str,
    *,
    artifact_type: str | None,
) -> Referrers:
    """The referrers of `image@digest` for the group (pull access already checked)."""
    found = await image_sources(pull.group, pull.upstreams, image)
    key = ("referrers", pull.group.id, source_key(found), image, digest)
    entry = cache.referrer_lists.get(key)
    if entry is not None and entry.fresh:
        fetched, result = entry.value, "HIT"
    else:
        try:
            # Unfiltered, so one cached answer serves every artifactType.
            fetched = await cache.referrer_lists.fetch_once(
                key, lambda: _from_upstreams(cache, found, digest)
            )
            result = "MISS"
        except UpstreamError as error:
            if entry is None or isinstance(error, UpstreamDenied):
                raise
            fetched, result = entry.value, "STALE"
    metrics.cache_requests.labels("referrers", result.lower()).inc()
    content, filters = _filtered(fetched, artifact_type)
    return Referrers(content, filters, result)
