"""What a registry client sees, checked the way a user would check it.

The token endpoint's JSON, the 401 challenge that sends a client back to
`/jwt/auth`, the OCI error envelope, and that a refused answer carries none
of the bytes it refused.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import jwt

from tests.security.tenancy import BASE_URL, Credential

REALM = f"{BASE_URL}/jwt/auth"


def basic(username: str, secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{username}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def repository(group: str, image: str = "alpine") -> str:
    return f"{group}/dependency_proxy/containers/{image}"


def pull_scope(repo: str) -> str:
    return f"repository:{repo}:pull"


async def ask_for_token(
    http: httpx.AsyncClient, credential: Credential, repo: str
) -> httpx.Response:
    """`docker login` + pull: GET /jwt/auth with Basic credentials and the pull scope."""
    return await http.get(
        "/jwt/auth",
        params={"service": "dependency_proxy", "scope": pull_scope(repo)},
        headers=basic(credential.username, credential.secret),
    )


def granted_access(token: str) -> list[dict[str, Any]]:
    """The `access` claim, as a client would read it (the signature is the server's business)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    access: list[dict[str, Any]] = claims["access"]
    return access


def assert_oci_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    if response.request.method == "HEAD":
        return
    errors = response.json()["errors"]
    assert [error["code"] for error in errors] == [code], errors
    assert errors[0]["message"]


def challenge_params(response: httpx.Response) -> dict[str, str]:
    scheme, _, params = response.headers["www-authenticate"].partition(" ")
    assert scheme == "Bearer"
    parsed = {}
    for item in params.split(","):
        name, _, value = item.partition("=")
        parsed[name.strip()] = value.strip().strip('"')
    return parsed


def assert_challenge(
    response: httpx.Response, *, scope: str | None = None, error: str | None = None
) -> None:
    """401 UNAUTHORIZED with `WWW-Authenticate: Bearer realm=...,service=...`."""
    assert_oci_error(response, 401, "UNAUTHORIZED")
    params = challenge_params(response)
    assert params["realm"] == REALM
    assert params["service"] == "dependency_proxy"
    assert params.get("scope") == scope
    assert params.get("error") == error


def assert_nothing_served(response: httpx.Response, *secrets: bytes) -> None:
    """A refusal names no digest and carries none of the refused bytes."""
    assert "docker-content-digest" not in response.headers
    for secret in secrets:
        assert secret not in response.content


async def pull(
    http: httpx.AsyncClient, credential: Credential, repo: str, tail: str, method: str = "GET"
) -> httpx.Response:
    """What docker does for one request: a token for `repo`, then `/v2/<repo>/<tail>`."""
    answer = await ask_for_token(http, credential, repo)
    assert answer.status_code == 200, answer.text
    return await http.request(method, f"/v2/{repo}/{tail}", headers=bearer(answer.json()["token"]))
