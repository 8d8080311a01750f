"""Who is calling the API: a personal access token (Bearer or PRIVATE-TOKEN) or the
web session, which counts for a POST only with its CSRF token (a cross-site form
cannot send that header)."""

from __future__ import annotations

from starlette.requests import Request

from app.accounts.principal import Principal
from app.accounts.services import authenticate_personal_access_token
from app.accounts.sessions import CSRF_HEADER, csrf_valid, principal_from_session

API_SCOPES = ("api", "read_api")


class InvalidToken(Exception):
    """A token was presented but is unknown, expired, revoked or its user is blocked."""


class InsufficientScope(Exception):
    """The token is valid but has neither `api` nor `read_api`."""


def presented_token(request: Request) -> str | None:
    if token := request.headers.get("private-token"):
        return token.strip()
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


async def api_principal(request: Request) -> Principal | None:
    """The principal behind the request, or None for an anonymous one.

    Raises InvalidToken / InsufficientScope when a presented token cannot be used
    (GitLab answers 401 / 403 rather than treating the caller as anonymous).
    """
    token = presented_token(request)
    if token is not None:
        principal = await authenticate_personal_access_token(token)
        if principal is None:
            raise InvalidToken()
        if not any(principal.has_scope(scope) for scope in API_SCOPES):
            raise InsufficientScope()
        return principal
    if "session" not in request.scope:
        return None
    if request.method not in ("GET", "HEAD") and not csrf_valid(
        request.session, request.headers.get(CSRF_HEADER)
    ):
        return None
    return await principal_from_session(request.session)
