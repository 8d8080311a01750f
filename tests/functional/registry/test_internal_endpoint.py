"""The internal endpoint (`registry/internal.py`) gives a registry client no bytes: not
without an instance token, not with a registry token, not a committed blob even with
a valid instance token (it serves only a download in progress, to other instances)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette

from app.accounts import records as accounts
from app.accounts.principal import Principal
from app.dependency_proxy.downloads import internal
from app.dependency_proxy.storage import write_blob
from app.groups import access_tokens
from app.groups import records as groups
from app.groups.models import AccessLevel
from tests.conftest import TEST_SECRET
from tests.functional.registry.test_registry_surface import alice, token_for  # noqa: F401
from tests.functional.web.conftest import Browser
from tests.security.registry_answers import basic

CONTENT = b"layer bytes that must never leak " * 100
DIGEST = "sha256:" + hashlib.sha256(CONTENT).hexdigest()
URL = f"{internal.PATH}{DIGEST}"


async def cache_blob(app: Starlette) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield CONTENT

    await write_blob(app.state.cache.store, DIGEST, chunks())


async def test_without_an_instance_token_the_endpoint_answers_401_and_no_bytes(
    app: Starlette,
    client: httpx.AsyncClient,
    alice: str,  # noqa: F811
) -> None:
    await cache_blob(app)
    registry_token = await token_for(client, alice)
    forged = internal.sign("another-secret-key-of-enough-length-000", DIGEST)
    for headers in (
        {},
        {"Authorization": f"Bearer {registry_token}"},
        {"Authorization": f"{internal.SCHEME} {forged}"},
        {"Authorization": f"{internal.SCHEME} {internal.sign(TEST_SECRET, 'sha256:' + '0' * 64)}"},
    ):
        answer = await client.get(URL, headers=headers)
        assert answer.status_code == 401, headers
        assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert CONTENT[:32] not in answer.content


async def test_a_valid_instance_token_opens_no_committed_blob(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    await cache_blob(app)
    headers = {
        "Authorization": f"{internal.SCHEME} {internal.sign(TEST_SECRET, DIGEST)}",
        "X-Request-Id": "req-123",
    }
    answer = await client.get(URL, headers=headers)
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    assert answer.headers["X-Request-Id"] == "req-123"  # followed across instances
    assert CONTENT[:32] not in answer.content


async def test_a_malformed_digest_is_an_oci_error(client: httpx.AsyncClient) -> None:
    answer = await client.get(f"{internal.PATH}sha256:not-a-digest")
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert (await client.get(f"{internal.PATH}sha256:../../etc/passwd")).status_code == 404


async def test_no_principal_opens_the_endpoint_not_even_a_group_owner_or_admin(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    """A group access token (a group principal), an admin's token and a signed-in admin
    all get 401: only an instance token opens it, whoever the caller is in a group."""
    await cache_blob(app)
    acme = await groups.create_group("acme")
    admin = await accounts.create_user("root", "root@example.com", "root-password-1", is_admin=True)
    await groups.add_member(acme, admin, AccessLevel.OWNER)
    owner = Principal(user=admin)
    group_token = (
        await access_tokens.create_group_access_token(owner, acme, "ci", "owner", ["api"])
    ).secret
    admin_token = (await accounts.create_personal_access_token(admin, "t", "api")).secret
    signed_in = await Browser(client).sign_in("root", "root-password-1")
    assert signed_in.status_code == 303, signed_in.text
    for headers in (
        {"Authorization": f"Bearer {group_token}"},
        {"PRIVATE-TOKEN": group_token},
        {"Authorization": basic("ci-bot", group_token)["Authorization"]},
        {"Authorization": f"Bearer {admin_token}"},
        {"PRIVATE-TOKEN": admin_token},
        {"Authorization": f"{internal.SCHEME} {group_token}"},
        {},  # the admin's session cookie alone
    ):
        answer = await client.get(URL, headers=headers)
        assert answer.status_code == 401, headers
        assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert CONTENT[:32] not in answer.content
