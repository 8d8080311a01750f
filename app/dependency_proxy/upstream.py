"""The only code that talks HTTP to upstream registries (Docker Hub by default).

One :class:`UpstreamClient` per upstream holds one connection pool and one token
cache. Every failure leaves here as a domain error from ``errors.py`` with a
message that is safe to show a client: it never carries our credentials.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from app.dependency_proxy.errors import (
    BlobUnknown,
    DependencyProxyError,
    DigestMismatch,
    InvalidReference,
    ManifestUnknown,
    TooLarge,
    UpstreamDenied,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from app.dependency_proxy.listings import (
    OCI_INDEX,
    TAG_LIST_MAX_BYTES,
    FetchedReferrers,
    TagPage,
    is_index,
    next_page,
    parse_tags,
)
from app.dependency_proxy.upstream_auth import (
    RegistryAuth,
    TokenStore,
    UpstreamCredentials,
    failure_kind,
    leading_int,
    retry_after_seconds,
    seconds_text,
    transport_failure,
)
from app.dependency_proxy.usage import observe_upstream_response
from app.logging import outgoing_headers

MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
BLOB_CHUNK_SIZE = 1024 * 1024
#: Cap for the GET that head_manifest falls back to (the OCI spec's suggested limit).
DEFAULT_MANIFEST_LIMIT = 4 * 1024 * 1024

_NAME_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"^{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_DIGEST = re.compile(r"^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


@dataclass(frozen=True)
class ManifestHead:
    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class FetchedManifest:
    content: bytes
    digest: str
    media_type: str


@dataclass(frozen=True)
class RateLimit:
    limit: int | None
    remaining: int | None
    observed_at: datetime


class UpstreamBlob:
    """An open streaming blob response; close it (or use ``async with``) when done."""

    def __init__(self, response: httpx.Response, timeout: httpx.Timeout) -> None:
        self._response = response
        self._timeout = timeout
        length = response.headers.get("content-length", "")
        self.size: int | None = int(length) if length.isdigit() else None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body in chunks of up to 1 MiB, never held whole in memory."""
        try:
            async for chunk in self._response.aiter_bytes(BLOB_CHUNK_SIZE):
                yield chunk
        except httpx.HTTPError as exc:
            # A stall or a cut mid-stream: the caller must discard what it spooled.
            raise transport_failure(exc, "upstream", self._timeout) from exc

    async def aclose(self) -> None:
        await self._response.aclose()

    async def __aenter__(self) -> UpstreamBlob:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class UpstreamClient:
    """A registry's v2 API, with its token dance, as a few typed coroutines."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 100,
        docker_hub: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        #: Docker Hub's implicit `library/` namespace applies (to Docker Hub only).
        self.docker_hub = docker_hub
        self._host = httpx.URL(self.base_url).netloc.decode("ascii")  # host[:port], for messages
        #: Upstream responses by status code ("200", "404", ...) and failures
        #: ("timeout", "connection_error", "protocol_error"), for metrics.
        self.request_counts: Counter[str] = Counter()
        self._rate_limit: RateLimit | None = None
        # Read timeouts bound each socket read; this bounds a whole exchange
        # (token dance included) so a trickling upstream cannot hold a request forever.
        self._total_timeout = connect_timeout + 2 * read_timeout
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout),
            limits=httpx.Limits(max_connections=max_connections),
            transport=transport,
            # httpx drops Authorization when a redirect leaves the origin (the CDN).
            follow_redirects=True,
            # Identity keeps Content-Length equal to the bytes we hash and count.
            headers={"User-Agent": "dockyard", "Accept-Encoding": "identity"},
            event_hooks={"request": [_carry_request_id], "response": [self._observe]},
            # One client serves every group: a cookie one group's credentials
            # earned (some mirrors keep a login session in one) must never ride
            # along on another group's request.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        )
        self._tokens = TokenStore(
            self._http, self.request_counts, secure=self.base_url.startswith("https:")
        )

    def upstream_name(self, image: str) -> str:
        """Docker Hub's implicit namespace: ``alpine`` is ``library/alpine`` there only."""
        return image if "/" in image or not self.docker_hub else f"library/{image}"

    def repository(self, image: str) -> str:
        """The upstream repository of `image`, named with the registry it lives on."""
        return f"{self.base_url}/{self.upstream_name(image)}"

    @property
    def rate_limit(self) -> RateLimit | None:
        """The last ``ratelimit-limit`` / ``ratelimit-remaining`` the upstream sent."""
        return self._rate_limit

    async def aclose(self) -> None:
        await self._http.aclose()

    async def head_manifest(
        self,
        image: str,
        reference: str,
        credentials: UpstreamCredentials | None,
        *,
        max_size: int = DEFAULT_MANIFEST_LIMIT,
    ) -> ManifestHead:
        """Digest, type and size without a pull (Docker Hub does not count HEADs)."""
        path = self._manifest_path(image, reference)
        async with self._guard():
            response = await self._send("HEAD", path, image, credentials, _MANIFEST_ACCEPT)
            await response.aclose()
        self._raise_for_status(
            response, image, credentials, ManifestUnknown(f"manifest unknown: {image}")
        )
        digest = response.headers.get("docker-content-digest", "")
        media_type = _media_type(response.headers.get("content-type"))
        length = response.headers.get("content-length", "")
        if _DIGEST.match(digest) and media_type and length.isdigit():
            if _DIGEST.match(reference) and digest != reference:
                raise DigestMismatch(f"upstream says {image}@{reference} has digest {digest}")
            return ManifestHead(digest, media_type, int(length))
        # Some mirrors omit the digest on HEAD: hashing the manifest is the only truth left.
        fetched = await self.get_manifest(image, reference, credentials, max_size=max_size)
        return ManifestHead(fetched.digest, fetched.media_type, len(fetched.content))

    async def get_manifest(
        self,
        image: str,
        reference: str,
        credentials: UpstreamCredentials | None,
        *,
        max_size: int,
    ) -> FetchedManifest:
        """The manifest's exact bytes, verified against every digest we were told."""
        path = self._manifest_path(image, reference)
        async with self._guard():
            response = await self._send("GET", path, image, credentials, _MANIFEST_ACCEPT)
            try:
                self._raise_for_status(
                    response, image, credentials, ManifestUnknown(f"manifest unknown: {image}")
                )
                content = await _read_capped(response, max_size, f"manifest {image}:{reference}")
            finally:
                await response.aclose()
        digest = "sha256:" + hashlib.sha256(content).hexdigest()
        for expected in (reference, response.headers.get("docker-content-digest")):
            if expected and (":" in expected) and not _matches(content, expected):
                raise DigestMismatch(
                    f"upstream sent a manifest for {image} whose digest {digest} is not {expected}"
                )
        media_type = _media_type(response.headers.get("content-type")) or _embedded_type(content)
        if not media_type:
            raise UpstreamUnavailable(f"upstream sent a manifest for {image} without a media type")
        return FetchedManifest(content, digest, media_type)

    async def open_blob(
        self, image: str, digest: str, credentials: UpstreamCredentials | None
    ) -> UpstreamBlob:
        """Start a blob download; the caller streams ``chunks()`` and closes it."""
        path = self._blob_path(image, digest)
        async with self._guard():
            response = await self._send("GET", path, image, credentials)
        try:
            self._raise_for_status(
                response, image, credentials, BlobUnknown(f"blob unknown: {image}@{digest}")
            )
        except DependencyProxyError:
            await response.aclose()
            raise
        return UpstreamBlob(response, self._http.timeout)

    async def head_blob(
        self, image: str, digest: str, credentials: UpstreamCredentials | None
    ) -> int:
        """The blob's size; proves the upstream lets these credentials read it."""
        path = self._blob_path(image, digest)
        async with self._guard():
            response = await self._send("HEAD", path, image, credentials)
            await response.aclose()
        self._raise_for_status(
            response, image, credentials, BlobUnknown(f"blob unknown: {image}@{digest}")
        )
        length = response.headers.get("content-length", "")
        if not length.isdigit():
            raise UpstreamUnavailable(f"upstream did not give the size of {image}@{digest}")
        return int(length)

    async def list_tags(
        self,
        image: str,
        credentials: UpstreamCredentials | None,
        *,
        n: int | None = None,
        last: str | None = None,
    ) -> TagPage:
        """One page of the repository's tags (`n`, `last` as the OCI spec pages them)."""
        params = {"n": str(n)} if n is not None else {}
        params |= {"last": last} if last else {}
        path = f"/v2/{self._checked_name(image)}/tags/list"
        answer = await self._get_listing(path, image, credentials, params, f"tag list of {image}")
        if answer is None:
            raise ManifestUnknown(f"repository unknown: {image}")
        headers, content = answer
        return TagPage(parse_tags(content, image), *next_page(headers.get("link", "")))

    async def get_referrers(
        self,
        image: str,
        digest: str,
        credentials: UpstreamCredentials | None,
        *,
        artifact_type: str | None = None,
    ) -> FetchedReferrers | None:
        """The OCI 1.1 referrers of `digest`; None when the upstream has no
        referrers API (it answered 404), so the caller falls back to the tag schema."""
        if not _DIGEST.match(digest):
            raise InvalidReference(f"invalid digest: {digest!r}", part="digest")
        path = f"/v2/{self._checked_name(image)}/referrers/{digest}"
        params = {"artifactType": artifact_type} if artifact_type else {}
        what = f"referrers of {image}@{digest}"
        answer = await self._get_listing(path, image, credentials, params, what)
        if answer is None:
            return None
        headers, content = answer
        if not is_index(content):
            raise UpstreamUnavailable(f"upstream sent {what} that are no image index")
        media_type = _media_type(headers.get("content-type")) or OCI_INDEX
        return FetchedReferrers(content, media_type, headers.get("oci-filters-applied", "").strip())

    async def _get_listing(
        self,
        path: str,
        image: str,
        credentials: UpstreamCredentials | None,
        params: dict[str, str],
        what: str,
    ) -> tuple[httpx.Headers, bytes] | None:
        """A GET of a tag list or referrers document (capped); None for a 404."""
        async with self._guard():
            response = await self._send("GET", path, image, credentials, params=params)
            try:
                if response.status_code == 404:
                    return None
                self._raise_for_status(response, image, credentials, ManifestUnknown(what))
                return response.headers, await _read_capped(response, TAG_LIST_MAX_BYTES, what)
            finally:
                await response.aclose()

    # -- plumbing ------------------------------------------------------------

    def _checked_name(self, image: str) -> str:
        # Defence in depth: callers validate too, but nothing odd may reach a URL path.
        name = self.upstream_name(image)
        if len(name) > 255 or not _NAME.match(name):
            raise InvalidReference(f"invalid image name: {image!r}")
        return name

    def _manifest_path(self, image: str, reference: str) -> str:
        if not (_TAG.match(reference) or _DIGEST.match(reference)):
            raise InvalidReference(f"invalid tag or digest: {reference!r}", part="reference")
        return f"/v2/{self._checked_name(image)}/manifests/{reference}"

    def _blob_path(self, image: str, digest: str) -> str:
        if not _DIGEST.match(digest):
            raise InvalidReference(f"invalid digest: {digest!r}", part="digest")
        return f"/v2/{self._checked_name(image)}/blobs/{digest}"

    async def _send(
        self,
        method: str,
        path: str,
        image: str,
        credentials: UpstreamCredentials | None,
        accept: str | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        headers = {"Accept": accept} if accept else {}
        request = self._http.build_request(method, path, headers=headers, params=params)
        scope = f"repository:{self.upstream_name(image)}:pull"
        auth = RegistryAuth(self._tokens, credentials, scope)
        return await self._http.send(request, auth=auth, stream=True)

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        """Turn timeouts and transport errors into UpstreamUnavailable."""
        try:
            async with asyncio.timeout(self._total_timeout):
                yield
        except TimeoutError as exc:
            self.request_counts["timeout"] += 1
            raise UpstreamUnavailable(
                f"upstream timed out after {seconds_text(self._total_timeout)}"
            ) from exc
        except httpx.HTTPError as exc:
            self.request_counts[failure_kind(exc)] += 1
            raise transport_failure(exc, "upstream", self._http.timeout) from exc

    def _raise_for_status(
        self,
        response: httpx.Response,
        image: str,
        credentials: UpstreamCredentials | None,
        unknown: DependencyProxyError,
    ) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status == 404:
            raise unknown
        if status in (401, 403):
            raise UpstreamDenied(self._denied_message(image, credentials))
        if status == 429:
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
            suffix = f" (retry after {retry_after}s)" if retry_after is not None else ""
            raise UpstreamRateLimited(f"upstream rate limit reached{suffix}", retry_after)
        raise UpstreamUnavailable(f"upstream answered {status}")

    def _denied_message(self, image: str, credentials: UpstreamCredentials | None) -> str:
        # Docker Hub answers 401 for a repository that does not exist as for a
        # private one: say both, not "refused", which reads like our own login failed.
        where = f"{self.upstream_name(image)} does not exist upstream ({self._host})"
        if credentials is None:
            return (
                f"{where}, or needs upstream credentials: an Owner can set them "
                "in the group's Dependency Proxy settings"
            )
        return f"{where}, or the group's upstream credentials may not pull it"

    async def _observe(self, response: httpx.Response) -> None:
        # Runs for every response, redirects and token endpoint included.
        self.request_counts[str(response.status_code)] += 1
        limit = leading_int(response.headers.get("ratelimit-limit"))
        remaining = leading_int(response.headers.get("ratelimit-remaining"))
        # The group this request is made for, if any (usage over time).
        observe_upstream_response(remaining)
        if limit is not None or remaining is not None:
            self._rate_limit = RateLimit(limit, remaining, datetime.now(UTC))


async def _carry_request_id(request: httpx.Request) -> None:
    # The request id of the client request this serves: the upstream's operators
    # (or our own logs on a registry we also run) can match the two.
    request.headers.update(outgoing_headers())


_MANIFEST_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _embedded_type(content: bytes) -> str:
    match = re.search(rb'"mediaType"\s*:\s*"([^"]+)"', content[:4096])
    return match.group(1).decode("ascii", "replace") if match else ""


def _matches(content: bytes, digest: str) -> bool:
    algorithm, _, expected = digest.partition(":")
    if algorithm not in ("sha256", "sha512"):
        return False
    return hashlib.new(algorithm, content).hexdigest() == expected


async def _read_capped(response: httpx.Response, max_size: int, what: str) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_size:
        raise TooLarge(f"{what} is {declared} bytes, over the {max_size}-byte limit")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_size:  # stop reading: a lying Content-Length must not cost memory
            raise TooLarge(f"{what} is over the {max_size}-byte limit")
    return bytes(body)
