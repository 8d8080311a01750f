"""Oversized requests against a live `dockyard serve` (uvicorn with httptools, as shipped),
over real sockets. Issue 8, point 5: one socket sending a 100 MB header kept the server
busy and readiness slow, a 300 MB header was accepted; a 50 MB GraphQL body was parsed."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.security.raw_http import closed_by_server, connect, exchange, get, read_response
from tests.support.dockyard_server import DockyardServer

pytestmark = pytest.mark.e2e

KIB, MIB = 1024, 1024 * 1024
UNUSED_UPSTREAM = "http://127.0.0.1:9"  # nothing here pulls


def start(workdir: Path, **env: str) -> DockyardServer:
    server = DockyardServer(workdir, UNUSED_UPSTREAM, env=env)
    server.start()
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    live = start(tmp_path_factory.mktemp("limits"))
    try:
        yield live
    finally:
        live.stop()


def ready(server: DockyardServer) -> bool:
    return httpx.get(f"{server.url}/-/readiness", timeout=30).status_code == 200


def test_a_header_over_64_kib_is_refused_while_other_clients_are_served(
    server: DockyardServer,
) -> None:
    with connect(server.port) as attacker:
        # An unfinished head just under the limit: the server must hold it and go on serving.
        attacker.sendall(b"GET /-/liveness HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (60 * KIB))
        assert ready(server)
        # Then the header grows without end: 1 MiB at a time, up to 64 MiB.
        sent = 0
        answer = b""
        try:
            while sent < 64 * MIB:
                attacker.sendall(b"a" * MIB)
                sent += MIB
        except (BrokenPipeError, ConnectionResetError):
            pass
        with contextlib.suppress(ConnectionResetError):
            answer = attacker.recv(200)
    assert sent < 64 * MIB, "the server read the whole 64 MiB header"
    # The 431 is usually read before the reset; a closed connection is also a refusal.
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer
    assert ready(server)


def test_a_complete_head_over_the_limit_gets_431(server: DockyardServer) -> None:
    response = exchange(server.port, get("/-/liveness", "X-Big: " + "a" * (100 * KIB)))
    assert response.status == 431
    assert b"65536 bytes" in response.body


def test_a_url_over_the_limit_gets_431(server: DockyardServer) -> None:
    response = exchange(server.port, get("/-/liveness?q=" + "a" * (100 * KIB)))
    assert response.status == 431


def test_many_headers_adding_up_over_the_limit_get_431(server: DockyardServer) -> None:
    headers = [f"X-Header-{number}: {'a' * 1000}" for number in range(80)]
    response = exchange(server.port, get("/-/liveness", *headers))
    assert response.status == 431


def test_a_head_under_the_limit_is_served(server: DockyardServer) -> None:
    response = exchange(server.port, get("/-/liveness", "X-Big: " + "a" * (60 * KIB)))
    assert response.status == 200
    assert json.loads(response.body) == {"status": "ok"}


def test_the_header_limit_is_a_setting(tmp_path: Path) -> None:
    small = start(tmp_path, DOCKYARD_MAX_HEADER_BYTES="8192")
    try:
        refused = exchange(small.port, get("/-/liveness", "X-Big: " + "a" * (10 * KIB)))
        served = exchange(small.port, get("/-/liveness", "X-Big: " + "a" * (6 * KIB)))
    finally:
        small.stop()
    assert (refused.status, served.status) == (431, 200)


def declared_body(method: str, path: str, length: int, content_type: str) -> bytes:
    """A request head that announces a body, without the body."""
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def test_an_anonymous_50_mb_graphql_body_is_refused_before_it_is_sent(
    server: DockyardServer,
) -> None:
    with connect(server.port) as sock:
        sock.sendall(declared_body("POST", "/api/graphql", 50 * MIB, "application/json"))
        response = read_response(sock)  # answered without a byte of the body
        assert closed_by_server(sock)
    assert response.status == 413
    [error] = json.loads(response.body)["errors"]
    assert "larger than 1048576 bytes" in error["message"]


def test_an_oversized_token_request_is_refused_with_an_oci_error(server: DockyardServer) -> None:
    form = "application/x-www-form-urlencoded"
    with connect(server.port) as sock:
        sock.sendall(declared_body("POST", "/jwt/auth", 2 * MIB, form))
        response = read_response(sock)
    assert response.status == 413
    assert json.loads(response.body)["errors"][0]["code"] == "SIZE_INVALID"


def test_a_big_registry_push_is_refused_without_reading_it(server: DockyardServer) -> None:
    path = "/v2/acme/dependency_proxy/containers/alpine/blobs/uploads/1"
    with connect(server.port) as sock:
        sock.sendall(declared_body("PUT", path, 5 * 1024 * MIB, "application/octet-stream"))
        response = read_response(sock)
        assert closed_by_server(sock)  # the server does not wait for the 5 GiB
    assert response.status == 405
    assert response.headers["connection"] == "close"
    assert json.loads(response.body)["errors"][0]["code"] == "UNSUPPORTED"


def test_a_body_under_the_limit_on_the_same_socket_keeps_the_connection(
    server: DockyardServer,
) -> None:
    body = json.dumps({"query": "{ currentUser { username } }"}).encode()
    request = declared_body("POST", "/api/graphql", len(body), "application/json") + body
    with connect(server.port) as sock:
        for _ in range(2):  # two requests on one kept-alive connection
            sock.sendall(request)
            response = read_response(sock)
            assert response.status == 200
            assert json.loads(response.body) == {"data": {"currentUser": None}}
