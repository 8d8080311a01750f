"""The short-lived JWTs that `docker login` exchanges credentials for.

HS256 with a key derived from the instance secret (as GitLab derives its key
from db_key_base). The token names its principal by kind and id; the registry
looks the principal up again on every request, so revocation bites at once. A
token obtained with a password also names the user's credentials version, so a
password change, a reset or "sign out everywhere" ends it on the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt

from app import clock
from app.accounts.principal import Principal

AUDIENCE = "dependency_proxy"
ISSUER = "dockyard"
LEEWAY_SECONDS = 5


@dataclass(frozen=True)
class GrantedAccess:
    type: str
    name: str
    actions: tuple[str, ...]


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: str


@dataclass(frozen=True)
class TokenClaims:
    principal_kind: str
    principal_id: int
    access: tuple[GrantedAccess, ...]
    # The user's credentials version, for tokens obtained with a password.
    principal_version: int | None = None

    def allows_pull(self, repository: str) -> bool:
        return any(
            item.type == "repository" and item.name == repository and "pull" in item.actions
            for item in self.access
        )


def _signing_key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"dockyard-dependency-proxy", hashlib.sha256).digest()


def _principal_ref(principal: Principal) -> dict[str, Any]:
    if principal.deploy_token is not None:
        return {"kind": "deploy_token", "id": principal.deploy_token.id}
    if principal.personal_access_token is not None:
        # Group access tokens are personal access tokens of their group's bot.
        return {"kind": "personal_access_token", "id": principal.personal_access_token.id}
    if principal.user is None or principal.is_operator:
        raise ValueError("only a user or a token gets a registry token")
    user = principal.user
    return {"kind": "user", "id": user.id, "version": user.credentials_version}


def issue(
    principal: Principal, access: list[GrantedAccess], secret_key: str, lifetime: timedelta
) -> IssuedToken:
    now = clock.now()
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": principal.display_name,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()) - 5,
        "exp": int((now + lifetime).timestamp()),
        "jti": str(uuid.uuid4()),
        "principal": _principal_ref(principal),
        "access": [
            {"type": item.type, "name": item.name, "actions": list(item.actions)} for item in access
        ],
    }
    token = jwt.encode(claims, _signing_key(secret_key), algorithm="HS256")
    return IssuedToken(
        token=token,
        expires_in=int(lifetime.total_seconds()),
        issued_at=now.isoformat().replace("+00:00", "Z"),
    )


def verify(token: str, secret_key: str) -> TokenClaims | None:
    """The claims of a valid, unexpired token of ours, or None."""
    try:
        claims = jwt.decode(
            token,
            _signing_key(secret_key),
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "aud", "iss"]},
        )
        # PyJWT checks exp against the wall clock; ours may be moved by tests.
        if claims["exp"] + LEEWAY_SECONDS < clock.now().timestamp():
            return None
        principal = claims["principal"]
        access = tuple(
            GrantedAccess(
                type=str(item["type"]), name=str(item["name"]), actions=tuple(item["actions"])
            )
            for item in claims.get("access", [])
        )
        version = principal.get("version")
        return TokenClaims(
            principal_kind=str(principal["kind"]),
            principal_id=int(principal["id"]),
            access=access,
            principal_version=int(version) if version is not None else None,
        )
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return None
