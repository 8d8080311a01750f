"""The request-head limit of the HTTP protocol `dockyard serve` runs (app/http_protocol.py),
driven byte by byte through an in-memory transport. tests/security/test_request_limits.py
does the same over real sockets against a live server."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from app.http_protocol import HeadLimitedHttpToolsProtocol, RefusalLog, TlsProbeLog

LIMIT = 1024


class MemoryTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        addresses = {"sockname": ("127.0.0.1", 5000), "peername": ("127.0.0.1", 40000)}
        return addresses.get(name, default)


class Recorder:
    """An ASGI app that answers 200 and remembers what reached it."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def connect(app: Recorder) -> tuple[HeadLimitedHttpToolsProtocol, MemoryTransport]:
    config = Config(app=app, h11_max_incomplete_event_size=LIMIT, log_level="critical")
    config.load()
    protocol = HeadLimitedHttpToolsProtocol(config, ServerState(), {})
    transport = MemoryTransport()
    protocol.connection_made(transport)
    return protocol, transport


def head(header_bytes: int, path: str = "/") -> bytes:
    filler = b"a" * max(0, header_bytes)
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Fill: " + filler + b"\r\n\r\n"


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_head_within_the_limit_reaches_the_app() -> None:
    app = Recorder()
    protocol, transport = connect(app)
    protocol.data_received(head(LIMIT - 100))
    await settle()
    assert app.paths == ["/"]
    assert transport.written.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("piece", [1, 100, 4096, 1 << 20])
async def test_a_head_over_the_limit_is_answered_431_and_closed(piece: int) -> None:
    app = Recorder()
    protocol, transport = connect(app)
    data = head(8 * LIMIT)
    for start in range(0, len(data), piece):
        protocol.data_received(data[start : start + piece])
        if transport.closed:
            break
    await settle()
    assert app.paths == []
    assert transport.written.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"connection: close" in transport.written
    assert transport.closed


async def test_an_endless_header_is_refused_after_the_limit_and_one_read() -> None:
    app = Recorder()
    protocol, transport = connect(app)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
    fed = 0
    while not transport.closed and fed < 100 * LIMIT:
        protocol.data_received(b"a" * 256)
        fed += 256
    assert transport.closed
    assert fed <= LIMIT + 256  # stopped at the first read past the limit
    assert transport.written.startswith(b"HTTP/1.1 431")


async def test_a_long_url_counts_towards_the_limit() -> None:
    app = Recorder()
    protocol, transport = connect(app)
    protocol.data_received(head(0, path="/" + "p" * 2 * LIMIT))
    await settle()
    assert app.paths == []
    assert transport.written.startswith(b"HTTP/1.1 431")


async def test_a_registry_request_over_the_limit_gets_an_oci_error() -> None:
    app = Recorder()
    protocol, transport = connect(app)
    protocol.data_received(head(2 * LIMIT, path="/v2/acme/dependency_proxy/containers/a/tags/list"))
    await settle()
    assert transport.written.startswith(b"HTTP/1.1 431")
    headers, _, body = bytes(transport.written).partition(b"\r\n\r\n")
    assert b"content-type: application/json" in headers
    assert json.loads(body)["errors"][0]["code"] == "SIZE_INVALID"


async def test_each_request_on_a_kept_alive_connection_gets_the_whole_limit() -> None:
    app = Recorder()
    protocol, transport = connect(app)
    for path in ("/one", "/two", "/three"):  # together well over the limit
        data = head(LIMIT - 100, path)
        for start in range(0, len(data), 100):  # each head in many reads
            protocol.data_received(data[start : start + 100])
        await settle()
    assert app.paths == ["/one", "/two", "/three"]
    assert not transport.closed


def test_a_flood_of_refusals_is_one_log_line_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = RefusalLog(interval=3600)
    logger = logging.getLogger("test.refusals")
    with caplog.at_level(logging.WARNING, logger="test.refusals"):
        for _ in range(500):
            log.refused(logger, "127.0.0.1:40000", LIMIT)
    [record] = caplog.records
    assert "127.0.0.1:40000 sent a request head over 1024 bytes: answered 431" in record.message
    assert log.unreported == 499  # counted for the next message


def client_hello() -> bytes:
    """The first bytes a TLS client (docker probing HTTPS) sends."""
    outgoing = ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(
        ssl.MemoryBIO(), outgoing, server_hostname="127.0.0.1"
    )
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


async def test_a_tls_probe_is_answered_400_and_explained_once_in_the_log(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(HeadLimitedHttpToolsProtocol, "tls_probes", TlsProbeLog())
    app = Recorder()
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            protocol, transport = connect(app)
            protocol.data_received(client_hello())
            await settle()
            # As uvicorn answered it before: docker falls back to plain HTTP on this answer.
            assert transport.written.startswith(b"HTTP/1.1 400 Bad Request\r\n")
            assert transport.closed
    assert app.paths == []
    probes = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "dockyard.http"]
    assert probes == [
        (
            "INFO",
            "127.0.0.1:40000 tried TLS on this plain-HTTP port and was answered 400: docker "
            "does this for insecure registries before it falls back to plain HTTP (further "
            "such attempts are logged at debug level)",
        ),
        ("DEBUG", "127.0.0.1:40000 tried TLS on this plain-HTTP port (answered 400)"),
        ("DEBUG", "127.0.0.1:40000 tried TLS on this plain-HTTP port (answered 400)"),
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_other_garbage_is_still_an_invalid_request_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = Recorder()
    protocol, transport = connect(app)
    # uvicorn's loggers do not propagate to caplog's root handler: listen on its own.
    monkeypatch.setattr(protocol.logger, "level", logging.WARNING)
    protocol.logger.addHandler(caplog.handler)
    try:
        protocol.data_received(b"\x00\x01 not http at all\r\n\r\n")
        await settle()
    finally:
        protocol.logger.removeHandler(caplog.handler)
    assert transport.written.startswith(b"HTTP/1.1 400")
    assert "Invalid HTTP request received." in [r.getMessage() for r in caplog.records]
