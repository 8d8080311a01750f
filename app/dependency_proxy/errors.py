"""Domain errors of the Dependency Proxy.

Services raise these; each surface translates them into its own protocol
(OCI error JSON in `registry/`, payload errors in GraphQL, messages in pages).
"""

from __future__ import annotations

from app.errors import DockyardError, NotFound


class DependencyProxyError(DockyardError):
    """Base class: `message` is safe to show to a client."""


class InvalidReference(DependencyProxyError):
    """An image name, tag or digest that breaks the OCI grammar.

    `part` says which: "name", "tag", "digest", "reference" for a manifest
    reference that is neither a tag nor a digest (so no manifest can have it),
    or "path" for a request path that is no Dependency Proxy route at all.
    """

    def __init__(self, message: str, part: str = "name") -> None:
        super().__init__(message)
        self.part = part


class ProxyDisabled(DependencyProxyError):
    """The proxy is switched off for the instance or for the group."""


class ManifestUnknown(DependencyProxyError):
    """The upstream (or the cache) has no such manifest."""


class BlobUnknown(DependencyProxyError):
    """The upstream (or the cache) has no such blob."""


class TooLarge(DependencyProxyError):
    """A manifest or blob is larger than the configured cap."""


class DigestMismatch(DependencyProxyError):
    """The upstream sent bytes whose sha256 is not the digest asked for."""


class UpstreamError(DependencyProxyError):
    """The upstream could not be used. Subclasses say why."""


class UpstreamUnavailable(UpstreamError):
    """Connection error, timeout, 5xx, or a failing token endpoint."""


class UpstreamRateLimited(UpstreamError):
    """The upstream answered 429."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamDenied(UpstreamError):
    """The upstream answered 401/403 for this image (private, or bad credentials)."""


class DownloadFailed(DependencyProxyError):
    """A blob download broke off (stream cut, mismatch, size cap); nothing was cached."""


class OutOfSpace(DownloadFailed):
    """The data folder's disk (or the bucket's quota) is full: the blob could not be
    stored. Nothing partial is kept; the eviction pass is asked to free space."""

    def __init__(self, message: str, needed: int = 0) -> None:
        super().__init__(message)
        self.needed = needed


class NoUpstreamForHost(NotFound):
    """A host-qualified image (`ghcr.io/owner/tool`) whose host is none of the
    group's upstreams: 404 NAME_UNKNOWN, the message naming the host."""
