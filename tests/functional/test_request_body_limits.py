"""Request bodies over DOCKYARD_MAX_BODY_BYTES (1 MiB) are refused by every surface that
reads one, in that surface's own form; a registry write is refused without its body."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from tests.functional.web.conftest import PASSWORD, csrf_of, make_user

MIB = 1024 * 1024
PAGE = {"Accept": "text/html"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def streamed(total: int, first: bytes = b"") -> AsyncIterator[bytes]:
    """A chunked body (no Content-Length), as a client streaming an upload sends it."""
    yield first
    sent = len(first)
    while sent < total:
        yield b"a" * 65536
        sent += 65536


async def test_an_oversized_graphql_body_gets_a_graphql_error(client: httpx.AsyncClient) -> None:
    body = b"{" + b" " * (2 * MIB)
    response = await client.post(
        "/api/graphql", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    [error] = response.json()["errors"]
    assert "larger than 1048576 bytes" in error["message"]
    assert response.headers["connection"] == "close"


async def test_a_streamed_graphql_body_is_cut_off_at_the_limit(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/graphql",
        content=streamed(3 * MIB, b'{"query": "# '),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert "larger than" in response.json()["errors"][0]["message"]


async def test_a_graphql_body_under_the_limit_is_still_answered(client: httpx.AsyncClient) -> None:
    query = "# " + "x" * (MIB - 100) + "\n{ currentUser { username } }"
    response = await client.post("/api/graphql", json={"query": query})
    assert response.status_code == 200
    assert response.json() == {"data": {"currentUser": None}}


async def test_an_oversized_token_request_gets_an_oci_error(client: httpx.AsyncClient) -> None:
    body = b"grant_type=password&username=alice&password=" + b"a" * (2 * MIB)
    response = await client.post("/jwt/auth", content=body, headers=FORM)
    assert response.status_code == 413
    [error] = response.json()["errors"]
    assert error["code"] == "SIZE_INVALID"
    assert "larger than 1048576 bytes" in error["message"]


async def test_an_oversized_sign_in_form_gets_an_error_page(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/users/sign_in", content=streamed(2 * MIB, b"login=x&password="), headers=PAGE | FORM
    )
    assert response.status_code == 413
    assert "<h1>Request too large</h1>" in response.text
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


async def test_a_signed_in_user_sees_the_error_page_with_their_session(
    client: httpx.AsyncClient,
) -> None:
    await make_user("olivia")
    form = await client.get("/users/sign_in")
    signed_in = await client.post(
        "/users/sign_in",
        data={"authenticity_token": csrf_of(form.text), "login": "olivia", "password": PASSWORD},
    )
    assert signed_in.status_code == 303
    tokens = "/-/user_settings/personal_access_tokens"
    token_form = await client.get(tokens)
    body = f"authenticity_token={csrf_of(token_form.text)}&name=" + "n" * (2 * MIB)
    response = await client.post(tokens, content=body.encode(), headers=PAGE | FORM)
    assert response.status_code == 413
    assert "Request too large" in response.text
    assert "olivia" in response.text  # the page still knows who is signed in
    assert "n" * 1000 not in response.text


async def test_a_registry_write_is_refused_without_reading_its_body(
    client: httpx.AsyncClient,
) -> None:
    response = await client.put(
        "/v2/acme/dependency_proxy/containers/alpine/blobs/uploads/1", content=streamed(5 * MIB)
    )
    assert response.status_code == 405
    assert response.json()["errors"][0]["code"] == "UNSUPPORTED"
    assert response.headers["connection"] == "close"
