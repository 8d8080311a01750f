"""`/jwt/auth`: the Docker token endpoint (GET with Basic auth, and containerd's POST form)."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.accounts.errors import TooManyAttempts
from app.config import Settings
from app.dependency_proxy.services.grant_registry_access import (
    AuthenticationFailed,
    grant_registry_access,
)
from app.errors import PermissionDenied
from registry.auth import SERVICE
from registry.errors import oci_error


def _basic_credentials(request: Request) -> tuple[str | None, str | None]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        username, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None, None
    return username, password


async def token_endpoint(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    username, password = _basic_credentials(request)
    service = request.query_params.get("service")
    scopes = request.query_params.getlist("scope")
    if request.method == "POST":
        try:
            form = await request.form()
        except Exception:  # a malformed body is a bad request, not a 500
            return oci_error(400, "UNSUPPORTED", "the token request body is not a form")
        service = str(form.get("service") or service or "")
        scopes += [str(value) for value in form.getlist("scope")]
        if form.get("grant_type") == "password" or form.get("username"):
            username = str(form.get("username") or username or "")
            password = str(form.get("password") or password or "")
        elif form.get("grant_type") == "refresh_token":
            # We issue no refresh tokens; a client that asks gets a clear refusal.
            return oci_error(400, "UNSUPPORTED", "refresh tokens are not supported")
    if service and service != SERVICE:
        return oci_error(404, "NAME_UNKNOWN", f"unknown service {service!r}: use {SERVICE!r}")
    address = request.client.host if request.client else "unknown"
    try:
        issued = await grant_registry_access(username, password, scopes, settings, address)
    except TooManyAttempts as error:
        return oci_error(
            429,
            "TOOMANYREQUESTS",
            error.message,
            headers={"Retry-After": str(error.retry_after)},
        )
    except AuthenticationFailed as error:
        return oci_error(401, "UNAUTHORIZED", error.message)
    except PermissionDenied as error:
        return oci_error(403, "DENIED", error.message)
    return JSONResponse(
        {
            "token": issued.token,
            "access_token": issued.token,
            "expires_in": issued.expires_in,
            "issued_at": issued.issued_at,
        },
        headers={"Cache-Control": "no-store"},
    )
