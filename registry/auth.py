"""Bearer checks on registry requests, and the 401 challenge that starts `docker login`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from app.accounts import registry_tokens
from app.accounts import services as accounts
from app.accounts.principal import Principal
from app.accounts.registry_tokens import TokenClaims
from app.config import Settings
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


def bearer_claims(request: Request, settings: Settings) -> TokenClaims | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return registry_tokens.verify(token.strip(), settings.secret_key)


async def principal_for(claims: TokenClaims) -> Principal | None:
    """The principal behind the token, looked up again: revocation bites at once."""
    return await accounts.load_principal(claims.principal_kind, claims.principal_id)
