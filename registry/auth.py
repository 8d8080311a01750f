"""The 401 challenge that starts `docker login`, and what the request's registry JWT
says (`app.identity` verified it and looked its principal up)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from app.accounts.registry_tokens import TokenClaims
from app.config import Settings
from app.identity import Failure, identity_of
from registry.errors import oci_error

SERVICE = "dependency_proxy"


def challenge(
    settings: Settings, *, scope: str | None = None, error: str | None = None, message: str = ""
) -> JSONResponse:
    parts = [f'realm="{settings.external_url}/jwt/auth"', f'service="{SERVICE}"']
    if scope:
        parts.append(f'scope="{scope}"')
    if error:
        parts.append(f'error="{error}"')
    return oci_error(
        401,
        "UNAUTHORIZED",
        message or "authentication required",
        headers={"WWW-Authenticate": "Bearer " + ",".join(parts)},
    )


def registry_claims(request: Request) -> TokenClaims | None:
    """The claims of the request's valid registry JWT, or None."""
    return identity_of(request).registry_claims


def principal_gone(request: Request) -> bool:
    """A genuine token whose principal was revoked, blocked or lost its password since."""
    return identity_of(request).failure is Failure.PRINCIPAL_GONE
