"""The ASGI `http.response.pathsend` extension for uvicorn: a cached blob goes out with
`sendfile(2)`, from the page cache to the socket, never through Python's memory.

uvicorn does not implement the extension; `dockyard serve` runs uvicorn with
our own protocol class (`app/http_protocol.py`), which offers it on every
plain-HTTP request and hands the message to :func:`send_path`. Starlette's
`FileResponse` sends `pathsend` only for a whole file (GET without `Range`);
ranges, HEAD and every other response keep uvicorn's own path. Measured on
the benchmark (docs/benchmarks.md): 1 MiB reads through uvicorn reach about
0.6-0.8x of nginx with sendfile on a 256 MiB blob.

How: uvicorn has written the status line and headers (Content-Length
included) to its transport; once the transport's buffer is empty, the rest is
`os.sendfile` on a duplicate of the connection's descriptor (uvloop refuses
to watch a descriptor its own transport owns; the duplicate shares the
socket), waiting for writability when the socket is full. Then uvicorn is
told the body is complete, and keep-alive goes on as usual. A client that
goes away, or a file shorter than announced, closes the connection: the
client sees a short body, never a complete-looking wrong one.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("dockyard.http")

EXTENSION = "http.response.pathsend"
# Bytes per sendfile call: the loop runs other requests between calls.
SENDFILE_CHUNK = 4 * 1024 * 1024

Send = Callable[[Any], Awaitable[None]]


def offer(cycle: Any) -> None:
    """Advertise the extension on `cycle`'s scope and route its message to `send_path`."""
    transport = cycle.transport
    if transport.get_extra_info("sslcontext") is not None:
        return  # TLS: the kernel cannot encrypt what sendfile moves
    if transport.get_extra_info("socket") is None:
        return
    cycle.scope.setdefault("extensions", {})[EXTENSION] = {}
    original: Send = cycle.send

    async def send(message: Any) -> None:
        if message["type"] == EXTENSION:
            await send_path(cycle, original, str(message["path"]))
        else:
            await original(message)

    cycle.send = send


async def send_path(cycle: Any, original: Send, path: str) -> None:
    """The whole file at `path` as the body of the response `cycle` has started."""
    if cycle.disconnected:
        return
    if not cycle.response_started or cycle.response_complete:
        raise RuntimeError(f"{EXTENSION} needs a started, unfinished response")
    if cycle.chunked_encoding:  # Starlette's FileResponse always sends Content-Length
        raise RuntimeError(f"{EXTENSION} needs a Content-Length")
    if cycle.scope["method"] == "HEAD":
        await original({"type": "http.response.body", "body": b"", "more_body": False})
        return
    transport = cycle.transport
    # The headers almost always went out at once; if the socket was full, the
    # transport flushes them itself (no event tells us when: poll, briefly).
    while transport.get_write_buffer_size() and not transport.is_closing():  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    expected: int = cycle.expected_content_length
    sent = await _sendfile(transport, path, expected)
    if sent != expected:
        transport.close()  # a short body: the client cannot take it for the blob
        return
    cycle.expected_content_length = 0
    await original({"type": "http.response.body", "body": b"", "more_body": False})


async def _sendfile(transport: Any, path: str, count: int) -> int:
    """Up to `count` bytes of `path` into the transport's socket; returns how many went."""
    loop = asyncio.get_running_loop()
    source = os.open(path, os.O_RDONLY)
    socket_fd = os.dup(transport.get_extra_info("socket").fileno())
    offset = 0
    try:
        while offset < count:
            try:
                sent = os.sendfile(socket_fd, source, offset, min(SENDFILE_CHUNK, count - offset))
            except BlockingIOError:
                await _writable(loop, socket_fd)
                continue
            if sent == 0:
                log.warning("%s is shorter than the %d bytes announced", path, count)
                break
            offset += sent
            await asyncio.sleep(0)  # a fast client must not keep the loop to itself
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client went away
    finally:
        os.close(socket_fd)
        os.close(source)
    return offset


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)
