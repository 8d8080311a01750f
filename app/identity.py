"""Who is asking, for every request: one Starlette authentication backend for every surface.

The backend reads the credential each surface accepts, once, and turns it into
a `Principal` (`request.user.principal`); every surface reads that and nothing
else. What it accepts, by path:

    /v2/...          the registry JWT from /jwt/auth (`Authorization: Bearer`)
    /api/v4/...      a personal or group access token (`PRIVATE-TOKEN`, or
                     `Authorization: Bearer`); never the session cookie
    /api/...         such a token, else the web session, which counts for unsafe
                     methods only with its `X-CSRF-Token` header (GraphQL)
    /metrics         DOCKYARD_METRICS_TOKEN when configured (the only key then);
                     otherwise as /api
    /jwt/auth        nothing: it is the login, where `docker login` exchanges its
                     credentials (in the request itself) for a registry JWT
    static, probes   nothing
    everything else  the web session (forms check their CSRF field themselves:
                     it is in the body, which only the page reads)

A credential that was presented but does not stand for anyone is no error here:
the request goes on anonymous, with `request.auth.failure` saying why, and each
surface answers in its own format (OCI challenge, GraphQL error, REST JSON, a
redirect to sign-in). The operator principal is never produced here.
"""

from __future__ import annotations

import hmac
from enum import StrEnum

from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.requests import HTTPConnection

from app.accounts import registry_tokens
from app.accounts.authentication import authenticate_personal_access_token, load_principal
from app.accounts.principal import Principal
from app.accounts.registry_tokens import TokenClaims
from app.accounts.sessions import CSRF_HEADER, csrf_valid, principal_from_session
from app.config import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UNAUTHENTICATED_PREFIXES = ("/jwt/", "/-/static/", "/-/liveness", "/-/readiness")


class Via(StrEnum):
    """Which credential the principal came with."""

    NOTHING = "nothing"
    SESSION = "session"
    ACCESS_TOKEN = "access_token"  # a personal or group access token
    REGISTRY_TOKEN = "registry_token"
    METRICS_TOKEN = "metrics_token"


class Failure(StrEnum):
    """Why a presented credential did not make the request authenticated (or enough)."""

    INVALID_TOKEN = "invalid_token"  # unknown, expired, revoked, or its user blocked
    INSUFFICIENT_SCOPE = "insufficient_scope"  # valid, but without an API scope
    PRINCIPAL_GONE = "principal_gone"  # a genuine registry JWT whose principal lost access


class Identity(AuthCredentials):
    """`request.auth`: how the request authenticated, and what a surface needs to answer."""

    def __init__(
        self,
        principal: Principal | None,
        via: Via = Via.NOTHING,
        *,
        failure: Failure | None = None,
        registry_claims: TokenClaims | None = None,
    ) -> None:
        scopes = principal.scopes if principal is not None else frozenset()
        super().__init__(sorted(scopes or ()) if principal is not None else [])
        self.principal = principal
        self.via = via
        self.failure = failure
        self.registry_claims = registry_claims


class PrincipalUser(BaseUser):
    """`request.user`: the principal in Starlette's user protocol."""

    def __init__(self, principal: Principal | None) -> None:
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        return self.principal is not None

    @property
    def display_name(self) -> str:
        return self.principal.display_name if self.principal is not None else ""


def principal_of(request: HTTPConnection) -> Principal | None:
    """The principal behind the request (None when anonymous)."""
    user = request.scope.get("user")
    return user.principal if isinstance(user, PrincipalUser) else None


def identity_of(request: HTTPConnection) -> Identity:
    auth = request.scope.get("auth")
    return auth if isinstance(auth, Identity) else Identity(None)


def presented_access_token(conn: HTTPConnection) -> str | None:
    """GitLab's two ways to send a token: `PRIVATE-TOKEN`, or `Authorization: Bearer`."""
    if token := conn.headers.get("private-token", "").strip():
        return token
    return bearer_token(conn)


def bearer_token(conn: HTTPConnection) -> str | None:
    scheme, _, credentials = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


class DockyardAuthentication(AuthenticationBackend):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def authenticate(self, conn: HTTPConnection) -> tuple[Identity, PrincipalUser]:
        identity = await self._identify(conn)
        assert identity.principal is None or not identity.principal.is_operator
        return identity, PrincipalUser(identity.principal)

    async def _identify(self, conn: HTTPConnection) -> Identity:
        path = conn.url.path
        if path == "/v2" or path.startswith("/v2/"):
            return await self._registry(conn)
        if path.startswith(UNAUTHENTICATED_PREFIXES):
            return Identity(None)
        if path == "/metrics" and self.settings.metrics_token:
            return self._metrics_token(conn)
        if path.startswith("/api/v4/"):
            return await self._api(conn, session=False)
        if path.startswith("/api/") or path == "/metrics":
            return await self._api(conn)
        return await self._session(conn)

    async def _registry(self, conn: HTTPConnection) -> Identity:
        token = bearer_token(conn)
        claims = registry_tokens.verify(token, self.settings.secret_key) if token else None
        if claims is None:
            return Identity(None)
        principal = await load_principal(
            claims.principal_kind, claims.principal_id, claims.principal_version
        )
        if principal is None:
            return Identity(
                None, Via.REGISTRY_TOKEN, failure=Failure.PRINCIPAL_GONE, registry_claims=claims
            )
        return Identity(principal, Via.REGISTRY_TOKEN, registry_claims=claims)

    def _metrics_token(self, conn: HTTPConnection) -> Identity:
        presented = bearer_token(conn) or ""
        expected = self.settings.metrics_token
        if presented and hmac.compare_digest(presented.encode(), expected.encode()):
            return Identity(Principal.metrics_scraper(), Via.METRICS_TOKEN)
        return Identity(None, failure=Failure.INVALID_TOKEN if presented else None)

    async def _api(self, conn: HTTPConnection, *, session: bool = True) -> Identity:
        token = presented_access_token(conn)
        if token is not None:
            principal = await authenticate_personal_access_token(token)
            if principal is None:
                return Identity(None, failure=Failure.INVALID_TOKEN)
            if not principal.has_scope("read_api"):
                return Identity(principal, Via.ACCESS_TOKEN, failure=Failure.INSUFFICIENT_SCOPE)
            return Identity(principal, Via.ACCESS_TOKEN)
        if not session:
            return Identity(None)
        if conn.scope.get("method") not in SAFE_METHODS and not csrf_valid(
            conn.session, conn.headers.get(CSRF_HEADER)
        ):
            return Identity(None)  # a cross-site request cannot send that header
        return await self._session(conn)

    async def _session(self, conn: HTTPConnection) -> Identity:
        if "session" not in conn.scope:
            return Identity(None)
        principal = await principal_from_session(conn.session)
        return Identity(principal, Via.SESSION if principal is not None else Via.NOTHING)
