"""The only code that talks HTTP to upstream registries (Docker Hub by default).

One :class:`UpstreamClient` per upstream holds one connection pool and one token
cache. Every failure leaves here as a domain error from ``errors.py`` with a
message that is safe to show a client: it never carries our credentials.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

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

MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
BLOB_CHUNK_SIZE = 1024 * 1024
#: Cap for the GET that head_manifest falls back to (the OCI spec's suggested limit).
DEFAULT_MANIFEST_LIMIT = 4 * 1024 * 1024
#: The token spec's default when the token endpoint omits expires_in.
DEFAULT_TOKEN_LIFETIME = 60
#: Renew tokens this early so one is never presented just as it expires.
TOKEN_RENEWAL_MARGIN = 10.0
_MAX_CACHED_TOKENS = 10_000

_NAME_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"^{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_DIGEST = re.compile(r"^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


@dataclass(frozen=True)
class UpstreamCredentials:
    username: str
    password: str

    def __repr__(self) -> str:  # keeps the secret out of logs and tracebacks
        return f"UpstreamCredentials(username={self.username!r}, password='***')"


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


def _basic(credentials: UpstreamCredentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _transport_failure(
    exc: httpx.HTTPError, who: str, timeout: httpx.Timeout
) -> UpstreamUnavailable:
    """Say why a request failed, for an operator reading a client's error."""
    if isinstance(exc, httpx.ConnectTimeout):
        return UpstreamUnavailable(f"{who} timed out after {_seconds(timeout.connect or 0)}")
    if isinstance(exc, httpx.PoolTimeout):
        return UpstreamUnavailable(f"no free connection to the {who} after {timeout.pool}s")
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamUnavailable(f"{who} timed out after {_seconds(timeout.read or 0)}")
    if isinstance(exc, httpx.ConnectError):
        # The OS reason (refused, DNS failure) is what an operator needs; it holds no secrets.
        return UpstreamUnavailable(f"could not connect to the {who}: {exc}")
    if isinstance(exc, httpx.RemoteProtocolError):
        return UpstreamUnavailable(f"{who} closed the connection before the response was complete")
    if isinstance(exc, httpx.TooManyRedirects):
        return UpstreamUnavailable(f"{who} redirected too many times")
    return UpstreamUnavailable(f"{who} request failed ({type(exc).__name__})")


def _failure_kind(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connection_error"
    return "protocol_error"


def _retry_after(value: str | None) -> int | None:
    if not value:
        return None
    if value.strip().isdigit():
        return int(value)
    try:  # the other form RFC 9110 allows: an HTTP date
        wait = parsedate_to_datetime(value) - datetime.now(UTC)
    except (TypeError, ValueError):  # unparsable, or a date without a zone
        return None
    return max(0, int(wait.total_seconds()))


def _leading_int(value: str | None) -> int | None:
    # Docker Hub sends "100;w=21600": the count, then the window in seconds.
    if value is None:
        return None
    head = value.split(";", 1)[0].strip()
    return int(head) if head.isdigit() else None


def _challenges(response: httpx.Response) -> dict[str, dict[str, str]]:
    """WWW-Authenticate challenges by lower-case scheme ("bearer", "basic")."""
    found = {}
    for header in response.headers.get_list("www-authenticate"):
        scheme, _, rest = header.strip().partition(" ")
        params = {k.lower(): quoted or bare for k, quoted, bare in _CHALLENGE_PARAM.findall(rest)}
        found[scheme.lower()] = params
    return found


_Origin = tuple[str, str, int | None]
_TokenKey = tuple[str, str, str, str]  # realm, service, scope, username


class _TokenStore:
    """Bearer tokens per (realm, service, scope, username), fetched once per lifetime."""

    def __init__(self, http: httpx.AsyncClient, counts: Counter[str], secure: bool) -> None:
        self._http = http
        self._counts = counts
        self._secure = secure
        self._tokens: dict[_TokenKey, tuple[str, float]] = {}  # value, monotonic expiry
        self._locks: dict[_TokenKey, asyncio.Lock] = {}
        # What each registry origin last challenged with, so a cached token (or Basic)
        # can be sent up front instead of paying a 401 round trip on every request.
        self.bearer_realms: dict[_Origin, tuple[str, str]] = {}
        self.basic_origins: set[_Origin] = set()

    def cached(self, key: _TokenKey) -> str | None:
        value, expires_at = self._tokens.get(key, ("", 0.0))
        return value if expires_at > time.monotonic() else None

    def forget(self, key: _TokenKey) -> None:
        self._tokens.pop(key, None)

    async def obtain(self, key: _TokenKey, credentials: UpstreamCredentials | None) -> str:
        async with self._locks.setdefault(key, asyncio.Lock()):  # one fetch per scope at a time
            value = self.cached(key)
            if value is None:
                value, lifetime = await self._fetch(key, credentials)
                if len(self._tokens) >= _MAX_CACHED_TOKENS:
                    self._tokens = {k: v for k, v in self._tokens.items() if self.cached(k)}
                    self._locks = {
                        k: lock
                        for k, lock in self._locks.items()
                        if lock.locked() or k in self._tokens
                    }
                margin = min(TOKEN_RENEWAL_MARGIN, lifetime / 2)
                self._tokens[key] = (value, time.monotonic() + lifetime - margin)
            return value

    async def _fetch(
        self, key: _TokenKey, credentials: UpstreamCredentials | None
    ) -> tuple[str, int]:
        realm, service, scope, _ = key
        url = httpx.URL(realm)
        if url.scheme not in ("http", "https"):
            raise UpstreamUnavailable("the upstream named a token realm that is not HTTP(S)")
        if credentials is not None and self._secure and url.scheme != "https":
            raise UpstreamUnavailable("the upstream token realm is not HTTPS; credentials withheld")
        params = {name: value for name, value in (("service", service), ("scope", scope)) if value}
        headers = {"Authorization": _basic(credentials)} if credentials else {}
        try:
            response = await self._http.get(url.copy_merge_params(params), headers=headers)
        except httpx.HTTPError as exc:
            self._counts[_failure_kind(exc)] += 1
            raise _transport_failure(exc, "upstream token endpoint", self._http.timeout) from exc
        status = response.status_code
        if status in (401, 403):
            who = "the credentials" if credentials else "anonymous access"
            raise UpstreamDenied(f"upstream refused {who}")
        if status == 429:
            retry = _retry_after(response.headers.get("retry-after"))
            raise UpstreamRateLimited("upstream token endpoint rate limit reached", retry)
        if status != 200:
            raise UpstreamUnavailable(f"upstream token endpoint answered {status}")
        return _token_from(response)


def _token_from(response: httpx.Response) -> tuple[str, int]:
    try:
        body = response.json()
        value = body.get("token") or body.get("access_token")
        lifetime = int(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
    except (ValueError, AttributeError, TypeError):
        value, lifetime = None, 0
    if not isinstance(value, str) or not value:
        raise UpstreamUnavailable("upstream token endpoint sent no token")
    return value, lifetime if lifetime > 0 else DEFAULT_TOKEN_LIFETIME


class _RegistryAuth(httpx.Auth):
    """The token dance for one request, driven by the upstream's challenge.

    Only the registry's own origin is answered: a 401 from a host we were
    redirected to (a CDN) is returned as is, so no token is ever sent there.
    """

    def __init__(
        self, store: _TokenStore, credentials: UpstreamCredentials | None, scope: str
    ) -> None:
        self._store = store
        self._credentials = credentials
        self._scope = scope
        self._username = credentials.username if credentials else ""

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        origin = _origin(request.url)
        known = self._store.bearer_realms.get(origin)
        key = (*known, self._scope, self._username) if known else None
        if key is not None and (token := self._store.cached(key)):
            request.headers["Authorization"] = f"Bearer {token}"
        elif origin in self._store.basic_origins and self._credentials is not None:
            request.headers["Authorization"] = _basic(self._credentials)
        response = yield request
        if response.status_code != 401 or _origin(response.request.url) != origin:
            return
        await response.aread()  # frees its connection before the token request needs one
        challenges = _challenges(response)
        bearer = challenges.get("bearer", {})
        if "realm" in bearer:
            self._store.bearer_realms[origin] = (bearer["realm"], bearer.get("service", ""))
            if key is not None:
                self._store.forget(key)  # revoked early, or it never covered this scope
            scope = bearer.get("scope", self._scope)
            key = (bearer["realm"], bearer.get("service", ""), scope, self._username)
            token = await self._store.obtain(key, self._credentials)
            request.headers["Authorization"] = f"Bearer {token}"
        elif "basic" in challenges and self._credentials is not None:
            if request.headers.get("Authorization", "").startswith("Basic "):
                return  # these credentials were already refused
            self._store.basic_origins.add(origin)
            request.headers["Authorization"] = _basic(self._credentials)
        else:
            return
        yield request


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
            raise _transport_failure(exc, "upstream", self._timeout) from exc

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
    ) -> None:
        self.base_url = base_url.rstrip("/")
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
            event_hooks={"response": [self._observe]},
        )
        self._tokens = _TokenStore(
            self._http, self.request_counts, secure=self.base_url.startswith("https:")
        )

    @staticmethod
    def upstream_name(image: str) -> str:
        """Docker Hub's implicit namespace: ``alpine`` is ``library/alpine``."""
        return image if "/" in image else f"library/{image}"

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
        self._raise_for_status(response, image, ManifestUnknown(f"manifest unknown: {image}"))
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
                    response, image, ManifestUnknown(f"manifest unknown: {image}")
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
            self._raise_for_status(response, image, BlobUnknown(f"blob unknown: {image}@{digest}"))
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
        self._raise_for_status(response, image, BlobUnknown(f"blob unknown: {image}@{digest}"))
        length = response.headers.get("content-length", "")
        if not length.isdigit():
            raise UpstreamUnavailable(f"upstream did not give the size of {image}@{digest}")
        return int(length)

    # -- plumbing ------------------------------------------------------------

    def _manifest_path(self, image: str, reference: str) -> str:
        if not (_TAG.match(reference) or _DIGEST.match(reference)):
            raise InvalidReference(f"invalid tag or digest: {reference!r}")
        return f"/v2/{_checked_name(image)}/manifests/{reference}"

    def _blob_path(self, image: str, digest: str) -> str:
        if not _DIGEST.match(digest):
            raise InvalidReference(f"invalid digest: {digest!r}")
        return f"/v2/{_checked_name(image)}/blobs/{digest}"

    async def _send(
        self,
        method: str,
        path: str,
        image: str,
        credentials: UpstreamCredentials | None,
        accept: str | None = None,
    ) -> httpx.Response:
        headers = {"Accept": accept} if accept else {}
        request = self._http.build_request(method, path, headers=headers)
        scope = f"repository:{self.upstream_name(image)}:pull"
        auth = _RegistryAuth(self._tokens, credentials, scope)
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
                f"upstream timed out after {_seconds(self._total_timeout)}"
            ) from exc
        except httpx.HTTPError as exc:
            self.request_counts[_failure_kind(exc)] += 1
            raise _transport_failure(exc, "upstream", self._http.timeout) from exc

    @staticmethod
    def _raise_for_status(
        response: httpx.Response, image: str, unknown: DependencyProxyError
    ) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status == 404:
            raise unknown
        if status in (401, 403):
            raise UpstreamDenied(f"the upstream refused access to {image}")
        if status == 429:
            retry_after = _retry_after(response.headers.get("retry-after"))
            suffix = f" (retry after {retry_after}s)" if retry_after is not None else ""
            raise UpstreamRateLimited(f"upstream rate limit reached{suffix}", retry_after)
        raise UpstreamUnavailable(f"upstream answered {status}")

    async def _observe(self, response: httpx.Response) -> None:
        # Runs for every response, redirects and token endpoint included.
        self.request_counts[str(response.status_code)] += 1
        limit = _leading_int(response.headers.get("ratelimit-limit"))
        remaining = _leading_int(response.headers.get("ratelimit-remaining"))
        if limit is not None or remaining is not None:
            self._rate_limit = RateLimit(limit, remaining, datetime.now(UTC))


_MANIFEST_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)


def _checked_name(image: str) -> str:
    # Defence in depth: callers validate too, but nothing odd may reach a URL path.
    name = UpstreamClient.upstream_name(image)
    if len(name) > 255 or not _NAME.match(name):
        raise InvalidReference(f"invalid image name: {image!r}")
    return name


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
