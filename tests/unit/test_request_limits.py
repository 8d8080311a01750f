"""RequestBodyLimit (app/request_limits.py) around small ASGI apps, driven in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from app.request_limits import RequestBodyLimit

LIMIT = 1000


class Endpoint:
    """Reads the whole body (as a JSON or form endpoint does) unless told not to."""

    def __init__(self, *, read: bool = True, swallow: bool = False) -> None:
        self.read, self.swallow = read, swallow
        self.calls = 0
        self.bodies: list[int] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        request = Request(scope, receive)
        response: Response
        try:
            body = await request.body() if self.read else b""
            self.bodies.append(len(body))
            response = PlainTextResponse("read")
        except Exception:
            if not self.swallow:
                raise
            response = PlainTextResponse("the endpoint's own error", status_code=400)
        await response(scope, receive, send)


async def too_large(request: Request, message: str) -> Response:
    return JSONResponse({"refused": request.url.path, "message": message}, status_code=413)


def client(endpoint: Endpoint) -> httpx.AsyncClient:
    app = RequestBodyLimit(endpoint, max_bytes=LIMIT, too_large=too_large, unlimited=("/v2",))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def chunks(total: int, size: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


async def test_a_body_within_the_limit_reaches_the_endpoint() -> None:
    endpoint = Endpoint()
    async with client(endpoint) as http:
        response = await http.post("/api/graphql", content=b"x" * LIMIT)
    assert response.status_code == 200
    assert endpoint.bodies == [LIMIT]
    assert "connection" not in response.headers


async def test_a_declared_length_over_the_limit_is_refused_before_the_endpoint() -> None:
    endpoint = Endpoint()
    async with client(endpoint) as http:
        response = await http.post("/api/graphql", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.json()["refused"] == "/api/graphql"
    assert f"larger than {LIMIT} bytes" in response.json()["message"]
    assert response.headers["connection"] == "close"
    assert endpoint.calls == 0


async def test_a_chunked_body_is_cut_off_once_it_passes_the_limit() -> None:
    endpoint = Endpoint()
    async with client(endpoint) as http:
        response = await http.post("/jwt/auth", content=chunks(50 * LIMIT))
    assert response.status_code == 413
    assert response.headers["connection"] == "close"
    assert endpoint.bodies == []  # the endpoint never got a body


async def test_an_endpoint_that_catches_the_refusal_cannot_answer_instead() -> None:
    endpoint = Endpoint(swallow=True)
    async with client(endpoint) as http:
        response = await http.post("/users/sign_in", content=chunks(3 * LIMIT))
    assert response.status_code == 413
    assert "refused" in response.json()


async def test_a_chunked_body_within_the_limit_is_read_whole() -> None:
    endpoint = Endpoint()
    async with client(endpoint) as http:
        response = await http.post("/api/graphql", content=chunks(LIMIT))
    assert response.status_code == 200
    assert endpoint.bodies == [LIMIT]


async def test_an_unread_body_closes_the_connection_instead_of_being_drained() -> None:
    endpoint = Endpoint(read=False)
    async with client(endpoint) as http:
        response = await http.put("/v2/acme/blobs/uploads/1", content=b"x" * (50 * LIMIT))
        without_body = await http.get("/v2/")
    assert response.status_code == 200  # the unlimited prefix: the route answers
    assert response.headers["connection"] == "close"
    assert "connection" not in without_body.headers
