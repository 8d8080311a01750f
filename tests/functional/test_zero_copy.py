"""Zero-copy file bodies (app/zero_copy.py) under the HTTP protocol `dockyard serve` runs.

A real uvicorn server with our protocol class serves Starlette's FileResponse
(as cached blobs are served) in the test's own loop: whole files go through
sendfile, ranges and HEAD through Starlette, and keep-alive goes on after.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from app.http_protocol import HeadLimitedHttpToolsProtocol
from app.zero_copy import EXTENSION

SIZE = 9 * 1024 * 1024 + 123  # more than a socket buffer, and more than one sendfile call


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


DATA = os.urandom(SIZE)


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    path = tmp_path / "blob"
    path.write_bytes(DATA)
    return path


@pytest.fixture
async def base_url(blob: Path) -> AsyncIterator[str]:
    async def file(request: Request) -> Response:
        return FileResponse(blob, media_type="application/octet-stream")

    async def extensions(request: Request) -> Response:
        return JSONResponse(sorted(request.scope.get("extensions", {})))

    app = Starlette(routes=[Route("/blob", file), Route("/extensions", extensions)])
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=HeadLimitedHttpToolsProtocol, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait for)
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_the_server_offers_pathsend(base_url: str) -> None:
    async with httpx.AsyncClient() as client:
        assert EXTENSION in (await client.get(f"{base_url}/extensions")).json()


async def test_whole_files_arrive_intact_and_the_connection_is_kept(
    base_url: str,
) -> None:
    expected = hashlib.sha256(DATA).hexdigest()
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1)) as client:
        for _ in range(3):  # one connection: each body must end exactly where it should
            answer = await client.get(f"{base_url}/blob")
            assert answer.status_code == 200
            assert answer.headers["content-length"] == str(SIZE)
            assert hashlib.sha256(answer.content).hexdigest() == expected


async def test_ranges_and_head_are_still_right(base_url: str) -> None:
    data = DATA
    async with httpx.AsyncClient() as client:
        part = await client.get(f"{base_url}/blob", headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206 and part.content == data[1000:2000]
        tail = await client.get(f"{base_url}/blob", headers={"Range": f"bytes=-{10}"})
        assert tail.status_code == 206 and tail.content == data[-10:]
        head = await client.head(f"{base_url}/blob")
        assert head.status_code == 200 and head.headers["content-length"] == str(SIZE)
        assert head.content == b""


async def test_a_client_that_goes_away_does_not_stop_the_server(base_url: str, blob: Path) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /blob HTTP/1.1\r\nHost: test\r\n\r\n")
    await writer.drain()
    await reader.read(65536)  # the headers and the start of the body, then gone
    writer.close()
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{base_url}/blob")
        assert len(answer.content) == SIZE
