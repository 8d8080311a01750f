"""Forged, edited, foreign and malformed bearer tokens on `/v2`.

Every forgery below gets 401 with the `WWW-Authenticate: Bearer realm=...`
challenge and the OCI envelope, on the root, on a repository the principal
may pull and on one it may not, by GET and HEAD: never a 200, never a 500.
The controls first show that the same requests with honest tokens are served,
so each forgery would have reached bytes had its flaw been overlooked.
"""

from __future__ import annotations

import base64
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.warnings import InsecureKeyLengthWarning

from app.accounts import registry_tokens
from tests.security.registry_answers import (
    REALM,
    ask_for_token,
    assert_nothing_served,
    assert_oci_error,
    bearer,
    challenge_params,
    repository,
)
from tests.security.tenancy import TOP, UNRELATED, InProcessDockyard, Tenancy
from tests.support.fixtures import SeededReferenceRegistry
from tests.support.images import SeededImages

pytestmark = pytest.mark.e2e  # the reference registry is the upstream
in_module_loop = pytest.mark.asyncio(loop_scope="module")
OWN_REPO, OTHER_REPO = repository(TOP), repository(UNRELATED)


@dataclass
class Forge:
    """What a forger starts from: an honest token of the Guest of acme, and public facts."""

    honest: str
    claims: dict[str, Any]
    key: bytes  # the instance's signing key (only for claims the server itself could sign)
    admin_token_id: int
    admin_user_id: int
    guest_secret: str
    deploy_secret: str
    upstream_token: str

    def widened(self, **changes: Any) -> dict[str, Any]:
        access = [
            {"type": "repository", "name": name, "actions": ["pull"]}
            for name in (OWN_REPO, OTHER_REPO)
        ]
        return {**self.claims, "access": access, **changes}

    def signed(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key, algorithm="HS256")

    def with_payload(self, claims: dict[str, Any], signature_of: str | None = None) -> str:
        """`claims` in place of the payload, keeping the honest header and signature."""
        header, _, signature = (signature_of or self.honest).split(".")
        return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{signature}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def forge(
    tenancy_dockyard: InProcessDockyard,
    tenancy_world: Tenancy,
    reference_registry_session: SeededReferenceRegistry,
) -> Forge:
    guest = tenancy_world.credential("Guest", "PAT api")
    answer = await ask_for_token(tenancy_dockyard.http, guest, OWN_REPO)
    honest = answer.json()["token"]
    admin = tenancy_world.credential("instance admin", "PAT api").principal
    assert admin.personal_access_token is not None and admin.user is not None
    upstream = reference_registry_session.token_server.issue(
        "alice", "registry.test", [f"repository:{OWN_REPO}:pull"]
    )
    return Forge(
        honest=honest,
        claims=jwt.decode(honest, options={"verify_signature": False}),
        key=registry_tokens._signing_key(tenancy_dockyard.settings.secret_key),
        admin_token_id=admin.personal_access_token.id,
        admin_user_id=admin.user.id,
        guest_secret=guest.secret,
        deploy_secret=tenancy_world.credential(None, "deploy token of acme").secret,
        upstream_token=upstream,
    )


def _pull_paths(image_digest: str) -> list[str]:
    return [
        "/v2/",
        f"/v2/{OWN_REPO}/manifests/3.19",
        f"/v2/{OWN_REPO}/manifests/{image_digest}",
        f"/v2/{OTHER_REPO}/manifests/3.19",
    ]


@in_module_loop
async def test_controls_honest_and_server_signed_tokens_are_served(
    tenancy_dockyard: InProcessDockyard, forge: Forge, seeded_images: SeededImages
) -> None:
    """Without these, a 401 below might come from something else than the forgery."""
    http = tenancy_dockyard.http
    image = seeded_images.alpine
    assert (await http.get("/v2/", headers=bearer(forge.honest))).status_code == 200
    own = await http.get(f"/v2/{OWN_REPO}/manifests/3.19", headers=bearer(forge.honest))
    assert own.status_code == 200 and own.content == image.manifest
    # Signed by the server, the admin's principal and the wider access would be served:
    as_admin = forge.widened(
        principal={"kind": "personal_access_token", "id": forge.admin_token_id}
    )
    other = await http.get(
        f"/v2/{OTHER_REPO}/manifests/3.19", headers=bearer(forge.signed(as_admin))
    )
    assert other.status_code == 200 and other.content == image.manifest


def _hs512(claims: dict[str, Any], key: bytes) -> str:
    with warnings.catch_warnings():  # PyJWT finds 32 bytes short for SHA-512; so be it
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, key, algorithm="HS512")


def _now() -> int:
    return int(time.time())


FORGERIES: dict[str, Callable[[Forge], str]] = {
    # Unsigned tokens.
    "alg none, widened": lambda f: _unsigned({"alg": "none", "typ": "JWT"}, f.widened()),
    "alg None, original signature kept": lambda f: _unsigned(
        {"alg": "None"}, f.widened(), f.honest.split(".")[2]
    ),
    "alg none, unchanged claims": lambda f: _unsigned({"alg": "none"}, f.claims),
    # Signed with something else than the instance's derived key.
    "HS256 with another key": lambda f: jwt.encode(f.widened(), b"k" * 32, algorithm="HS256"),
    "HS256 with the raw instance secret": lambda f: jwt.encode(
        f.widened(), f.key.hex().encode(), algorithm="HS256"
    ),
    "HS256 of another Dockyard instance": lambda f: jwt.encode(
        f.widened(),
        registry_tokens._signing_key("another-instance-secret-" + "y" * 40),
        algorithm="HS256",
    ),
    # The honest signature over an edited payload.
    "payload widened to another group": lambda f: f.with_payload(f.widened()),
    "payload principal changed to the admin's token": lambda f: f.with_payload(
        f.widened(principal={"kind": "personal_access_token", "id": f.admin_token_id})
    ),
    "payload principal changed to the admin user": lambda f: f.with_payload(
        f.widened(principal={"kind": "user", "id": f.admin_user_id})
    ),
    "payload expiry pushed out": lambda f: f.with_payload({**f.claims, "exp": _now() + 10**8}),
    # Right key, wrong claims (only the server could sign these; it must still check them).
    "another audience": lambda f: f.signed({**f.claims, "aud": "registry.docker.io"}),
    "another issuer": lambda f: f.signed({**f.claims, "iss": "gitlab"}),
    "no audience": lambda f: f.signed({k: v for k, v in f.claims.items() if k != "aud"}),
    "expired beyond the leeway": lambda f: f.signed(
        {**f.claims, "iat": _now() - 3600, "nbf": _now() - 3600, "exp": _now() - 60}
    ),
    "not yet valid": lambda f: f.signed(
        {**f.claims, "iat": _now() + 3600, "nbf": _now() + 3600, "exp": _now() + 7200}
    ),
    "no expiry": lambda f: f.signed({k: v for k, v in f.claims.items() if k != "exp"}),
    "principal that does not exist": lambda f: f.signed(
        {**f.claims, "principal": {"kind": "user", "id": 999_999}}
    ),
    "principal of an unknown kind": lambda f: f.signed(
        {**f.claims, "principal": {"kind": "root", "id": 1}}
    ),
    "principal id not a number": lambda f: f.signed(
        {**f.claims, "principal": {"kind": "user", "id": "1 OR 1=1"}}
    ),
    "access not a list": lambda f: f.signed({**f.claims, "access": "*"}),
    # Algorithm confusion: asymmetric and other HMAC algorithms are not ours.
    "RS256 with a fresh RSA key": lambda f: jwt.encode(
        f.widened(), rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"
    ),
    "ES256 with a fresh EC key": lambda f: jwt.encode(
        f.widened(), ec.generate_private_key(ec.SECP256R1()), "ES256"
    ),
    "HS512 with the instance key": lambda f: _hs512(f.widened(), f.key),
    "the upstream token server's ES256 token": lambda f: f.upstream_token,
    # Credentials that are not registry tokens.
    "a personal access token as the bearer": lambda f: f.guest_secret,
    "a deploy token as the bearer": lambda f: f.deploy_secret,
    # Garbage.
    "not a JWT": lambda f: "not-a-jwt",
    "three empty parts": lambda f: "..",
    "a.b.c": lambda f: "a.b.c",
    "header not JSON": lambda f: f"{_b64(b'{{{')}.{f.honest.split('.', 1)[1]}",
    "payload a JSON list": lambda f: f.with_payload([1, 2]),  # type: ignore[arg-type]
    "non-ASCII": lambda f: "\u00fc" * 20,
    "8 KiB of junk": lambda f: "A" * 8192,
}


def _assert_refused(answer: httpx.Response, path: str) -> None:
    assert_oci_error(answer, 401, "UNAUTHORIZED")
    params = challenge_params(answer)
    assert params["realm"] == REALM and params["service"] == "dependency_proxy"
    if path != "/v2/":
        repo = path.removeprefix("/v2/").split("/manifests/")[0]
        assert params["scope"] == f"repository:{repo}:pull"


@in_module_loop
@pytest.mark.parametrize("forgery", list(FORGERIES))
async def test_forged_token_is_refused_with_the_challenge(
    tenancy_dockyard: InProcessDockyard,
    forge: Forge,
    seeded_images: SeededImages,
    forgery: str,
) -> None:
    token = FORGERIES[forgery](forge)
    image = seeded_images.alpine
    for path in _pull_paths(image.digest):
        for method in ("GET", "HEAD"):
            headers = {b"Authorization": f"Bearer {token}".encode()}  # bytes: any token goes
            answer = await tenancy_dockyard.http.request(method, path, headers=headers)
            _assert_refused(answer, path)
            assert_nothing_served(answer, image.manifest)


@in_module_loop
@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer ", "Basic Z3VzOnB3", "Token abc", "bearer", "Bearer a b c"],
)
async def test_malformed_authorization_headers_get_the_challenge(
    tenancy_dockyard: InProcessDockyard, authorization: str
) -> None:
    path = f"/v2/{OWN_REPO}/manifests/3.19"
    answer = await tenancy_dockyard.http.get(path, headers={"Authorization": authorization})
    _assert_refused(answer, path)
