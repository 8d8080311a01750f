"""The OCI 1.1 referrers of a manifest (signatures, SBOMs, attestations).

Passed through from the upstream's referrers API with the group's credentials.
An upstream without that API answers 404; then the OCI tag schema is the
fallback: the referrers are the image index tagged `sha256-<hex>` (what
cosign, oras and notation push to such registries), and no such tag means no
referrers (an empty index, never a 404, as the spec says). The `artifactType`
filter is applied here when the upstream did not apply it.

Answers are kept like tag list pages (`short_cache.py`, per group and upstream
credentials, `DOCKYARD_TAGS_LIST_CACHE_SECONDS`), and served stale when the
upstream fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app import metrics
from app.dependency_proxy.cache import PullThroughCache
from app.dependency_proxy.errors import ManifestUnknown, UpstreamDenied, UpstreamError
from app.dependency_proxy.listings import OCI_INDEX, FetchedReferrers
from app.dependency_proxy.services.authorize_pull import PullContext
from app.dependency_proxy.upstream_auth import fingerprint_of

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
    cache: PullThroughCache, pull: PullContext, image: str, digest: str, artifact_type: str | None
) -> FetchedReferrers:
    fetched = await cache.upstream_referrers(image, digest, pull.credentials, artifact_type)
    if fetched is not None:
        return fetched
    try:
        tagged = await cache.upstream.get_manifest(
            image, fallback_tag(digest), pull.credentials, max_size=cache.manifest_max_bytes
        )
    except ManifestUnknown:
        return FetchedReferrers(_index([]), OCI_INDEX, "")
    # Whatever else sits under that tag is no referrers index: none then.
    return FetchedReferrers(_index(_descriptors(tagged.content)), OCI_INDEX, "")


async def get_referrers(
    cache: PullThroughCache,
    pull: PullContext,
    image: str,
    digest: str,
    *,
    artifact_type: str | None,
) -> Referrers:
    """The referrers of `image@digest` for the group (pull access already checked)."""
    key = ("referrers", pull.group.id, fingerprint_of(pull.credentials), image, digest)
    entry = cache.referrer_lists.get(key)
    if entry is not None and entry.fresh:
        fetched, result = entry.value, "HIT"
    else:
        try:
            # Unfiltered, so one cached answer serves every artifactType.
            fetched = await cache.referrer_lists.fetch_once(
                key, lambda: _from_upstream(cache, pull, image, digest, None)
            )
            result = "MISS"
        except UpstreamError as error:
            if entry is None or isinstance(error, UpstreamDenied):
                raise
            fetched, result = entry.value, "STALE"
    metrics.cache_requests.labels("referrers", result.lower()).inc()
    content, filters = _filtered(fetched, artifact_type)
    return Referrers(content, filters, result)
