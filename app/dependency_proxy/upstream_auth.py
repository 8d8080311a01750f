"""The registry token dance (Docker's token auth spec), as an httpx.Auth.

Driven by the upstream's `WWW-Authenticate` challenge, never a hard-coded
realm; tokens are cached per (realm, service, scope, credentials fingerprint)
until they expire. The fingerprint is a keyed hash of identity *and* secret, so
a token fetched with one secret is never presented for another (a wrong secret
under a right identity must be refused, not handed the right one's token);
anonymous tokens, which carry no one's access, are shared. Split from
`upstream.py`, whose client is the only user.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from app.dependency_proxy.errors import UpstreamDenied, UpstreamRateLimited, UpstreamUnavailable

#: The token spec's default when the token endpoint omits expires_in.
DEFAULT_TOKEN_LIFETIME = 60
#: Renew tokens this early so one is never presented just as it expires.
TOKEN_RENEWAL_MARGIN = 10.0
_MAX_CACHED_TOKENS = 10_000
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


@dataclass(frozen=True)
class UpstreamCredentials:
    username: str
    password: str
    #: Keyed hash of username and password (`credentials.fingerprint`): what
    #: shared state (tokens, grants) is keyed by.
    fingerprint: str

    def __repr__(self) -> str:  # keeps the secret out of logs and tracebacks
        return f"UpstreamCredentials(username={self.username!r}, password='***')"


def fingerprint_of(credentials: UpstreamCredentials | None) -> str:
    """The key of these credentials in shared state; "" for anonymous access."""
    return credentials.fingerprint if credentials is not None else ""


def basic_header(credentials: UpstreamCredentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def origin_of(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def seconds_text(value: float) -> str:
    return f"{value:g}s"


def transport_failure(
    exc: httpx.HTTPError, who: str, timeout: httpx.Timeout
) -> UpstreamUnavailable:
    """Say why a request failed, for an operator reading a client's error."""
    if isinstance(exc, httpx.ConnectTimeout):
        return UpstreamUnavailable(f"{who} timed out after {seconds_text(timeout.connect or 0)}")
    if isinstance(exc, httpx.PoolTimeout):
        return UpstreamUnavailable(f"no free connection to the {who} after {timeout.pool}s")
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamUnavailable(f"{who} timed out after {seconds_text(timeout.read or 0)}")
    if isinstance(exc, httpx.ConnectError):
        # The OS reason (refused, DNS failure) is what an operator needs; it holds no secrets.
        return UpstreamUnavailable(f"could not connect to the {who}: {exc}")
    if isinstance(exc, httpx.RemoteProtocolError):
        return UpstreamUnavailable(f"{who} closed the connection before the response was complete")
    if isinstance(exc, httpx.TooManyRedirects):
        return UpstreamUnavailable(f"{who} redirected too many times")
    return UpstreamUnavailable(f"{who} request failed ({type(exc).__name__})")


def failure_kind(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connection_error"
    return "protocol_error"


def retry_after_seconds(value: str | None) -> int | None:
    if not value:
        return None
    if value.strip().isdigit():
        return int(value)
    try:  # the other form RFC 9110 allows: an HTTP date
        wait = parsedate_to_datetime(value) - datetime.now(UTC)
    except (TypeError, ValueError):  # unparsable, or a date without a zone
        return None
    return max(0, int(wait.total_seconds()))


def leading_int(value: str | None) -> int | None:
    # Docker Hub sends "100;w=21600": the count, then the window in seconds.
    if value is None:
        return None
    head = value.split(";", 1)[0].strip()
    return int(head) if head.isdigit() else None


def parse_challenges(response: httpx.Response) -> dict[str, dict[str, str]]:
    """WWW-Authenticate challenges by lower-case scheme ("bearer", "basic")."""
    found = {}
    for header in response.headers.get_list("www-authenticate"):
        scheme, _, rest = header.strip().partition(" ")
        params = {k.lower(): quoted or bare for k, quoted, bare in _CHALLENGE_PARAM.findall(rest)}
        found[scheme.lower()] = params
    return found


_Origin = tuple[str, str, int | None]
_TokenKey = tuple[str, str, str, str]  # realm, service, scope, credentials fingerprint


class TokenStore:
    """Bearer tokens per (realm, service, scope, credentials fingerprint), fetched
    once per lifetime. What is shared between credentials holds no secret: which
    realm an origin challenges with, and whether it wants Basic (each request
    then carries its own credentials)."""

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
        headers = {"Authorization": basic_header(credentials)} if credentials else {}
        try:
            response = await self._http.get(url.copy_merge_params(params), headers=headers)
        except httpx.HTTPError as exc:
            self._counts[failure_kind(exc)] += 1
            raise transport_failure(exc, "upstream token endpoint", self._http.timeout) from exc
        status = response.status_code
        if status in (401, 403):
            host = url.netloc.decode("ascii")
            if credentials is not None:
                raise UpstreamDenied(
                    f"the upstream ({host}) refused the group's upstream credentials: "
                    "an Owner can correct them in the group's Dependency Proxy settings"
                )
            raise UpstreamDenied(
                f"the upstream ({host}) refused anonymous access: the image may need "
                "upstream credentials, which an Owner sets in the group's Dependency Proxy settings"
            )
        if status == 429:
            retry = retry_after_seconds(response.headers.get("retry-after"))
            raise UpstreamRateLimited("upstream token endpoint rate limit reached", retry)
        if status != 200:
            raise UpstreamUnavailable(f"upstream token endpoint answered {status}")
        return token_from(response)


def token_from(response: httpx.Response) -> tuple[str, int]:
    try:
        body = response.json()
        value = body.get("token") or body.get("access_token")
        lifetime = int(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
    except (ValueError, AttributeError, TypeError):
        value, lifetime = None, 0
    if not isinstance(value, str) or not value:
        raise UpstreamUnavailable("upstream token endpoint sent no token")
    return value, lifetime if lifetime > 0 else DEFAULT_TOKEN_LIFETIME


class RegistryAuth(httpx.Auth):
    """The token dance for one request, driven by the upstream's challenge.

    Only the registry's own origin is answered: a 401 from a host we were
    redirected to (a CDN) is returned as is, so no token is ever sent there.
    """

    def __init__(
        self, store: TokenStore, credentials: UpstreamCredentials | None, scope: str
    ) -> None:
        self._store = store
        self._credentials = credentials
        self._scope = scope
        self._fingerprint = fingerprint_of(credentials)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        origin = origin_of(request.url)
        known = self._store.bearer_realms.get(origin)
        key = (*known, self._scope, self._fingerprint) if known else None
        if key is not None and (token := self._store.cached(key)):
            request.headers["Authorization"] = f"Bearer {token}"
        elif origin in self._store.basic_origins and self._credentials is not None:
            request.headers["Authorization"] = basic_header(self._credentials)
        response = yield request
        if response.status_code != 401 or origin_of(response.request.url) != origin:
            return
        await response.aread()  # frees its connection before the token request needs one
        challenges = parse_challenges(response)
        bearer = challenges.get("bearer", {})
        if "realm" in bearer:
            self._store.bearer_realms[origin] = (bearer["realm"], bearer.get("service", ""))
            if key is not None:
                self._store.forget(key)  # revoked early, or it never covered this scope
            scope = bearer.get("scope", self._scope)
            key = (bearer["realm"], bearer.get("service", ""), scope, self._fingerprint)
            token = await self._store.obtain(key, self._credentials)
            request.headers["Authorization"] = f"Bearer {token}"
        elif "basic" in challenges and self._credentials is not None:
            if request.headers.get("Authorization", "").startswith("Basic "):
                return  # these credentials were already refused
            self._store.basic_origins.add(origin)
            request.headers["Authorization"] = basic_header(self._credentials)
        else:
            return
        yield request
