"""The HTTP/1.1 protocol `dockyard serve` runs: uvicorn's httptools protocol, with a
limit on the size of a request's head (request line and headers).

Neither llhttp nor httptools limits the head: httptools gathers a header's
pieces with `bytes +=` (quadratic copying) and hands uvicorn the header only
once it is complete, and uvicorn's own URL callback does the same. One client
sending a header of a few hundred megabytes kept a worker near 100% CPU and
held the whole header in memory (measured: 200 MB accepted after 63 s,
readiness answered in 11 s meanwhile, RSS +180 MB). h11, uvicorn's other
parser, refuses a head over `h11_max_incomplete_event_size` (16 KiB unless
set). This protocol applies that same setting to httptools: it counts the bytes
received while a head is incomplete and, past the limit, answers 431 and closes
the connection, so the parser never holds more than the limit plus one read.

It also recognises a TLS handshake sent to this plain-HTTP port. docker tries
HTTPS first for every insecure registry, so each `docker login` and `docker
pull` made uvicorn log "WARNING: Invalid HTTP request received."; the answer
stays the same 400 (docker then falls back to HTTP), and the log says once
what it was.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, cast

from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from app import zero_copy
from app.external_url import PEER_KEY

HEADER_LINE_OVERHEAD = len(b": \r\n")
# A TLS record starts with its content type (22: handshake) and version 3.x; an
# HTTP request starts with a method name, so the two never meet.
TLS_HANDSHAKE_START = b"\x16\x03"
REGISTRY_PREFIX = b"/v2"

log = logging.getLogger("dockyard.http")


class RefusalLog:
    """At most one warning per `interval` seconds: a flood of oversized heads must not
    become a flood of log lines."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self.unreported = 0
        self.reported_at = -interval

    def refused(self, logger: logging.Logger, client: str, limit: int) -> None:
        self.unreported += 1
        now = time.monotonic()
        if now - self.reported_at < self.interval:
            return
        logger.warning(
            "%s sent a request head over %d bytes: answered 431 "
            "(%d head(s) refused since the last such message)",
            client,
            limit,
            self.unreported,
        )
        self.unreported, self.reported_at = 0, now


class TlsProbeLog:
    """The first TLS handshake on the plain-HTTP port is explained at info level, the
    rest go to debug: docker sends one before every login and pull."""

    def __init__(self) -> None:
        self.explained = False

    def probed(self, logger: logging.Logger, client: str) -> None:
        if self.explained:
            logger.debug("%s tried TLS on this plain-HTTP port (answered 400)", client)
            return
        self.explained = True
        logger.info(
            "%s tried TLS on this plain-HTTP port and was answered 400: docker does this "
            "for insecure registries before it falls back to plain HTTP (further such "
            "attempts are logged at debug level)",
            client,
        )


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol answering 431 to a request head over the limit."""

    refusals = RefusalLog()  # one per worker process
    tls_probes = TlsProbeLog()  # one per worker process

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_head_bytes = config.h11_max_incomplete_event_size or (
            DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        )
        self._in_head = True  # between a message's first byte and its headers' end
        self._received_in_head = 0  # raw bytes read while the head was incomplete
        self._head_size = 0  # URL and header lines, as parsed
        self._url_start = b""  # the URL's first bytes: a /v2 refusal is an OCI error
        self._refused = False
        self._first_read = True

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._first_read:
            self._first_read = False
            if data.startswith(TLS_HANDSHAKE_START):
                self.tls_probes.probed(log, self._client_text())
                self.send_400_response("This port speaks plain HTTP, not TLS.")
                return
        if self._in_head:
            self._received_in_head += len(data)
        super().data_received(data)
        # Still no end of the head after more than the limit: stop reading now,
        # whatever the client says it is still going to send.
        if self._in_head and self._received_in_head > self.max_head_bytes:
            self._refuse()

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        if len(self._url_start) < len(REGISTRY_PREFIX):
            self._url_start += url[: len(REGISTRY_PREFIX)]
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + HEADER_LINE_OVERHEAD
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        # The connection's own peer, kept apart from `client`, which uvicorn's proxy
        # headers middleware rewrites: app/external_url.py trusts X-Forwarded-Host
        # only from a trusted proxy.
        cast(dict[str, Any], self.scope)[PEER_KEY] = self.client
        self._in_head = False
        # A head that arrived in one read is only measured here (exactly).
        if self._head_size > self.max_head_bytes:
            self._refuse()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        # Every request (pipelined ones too) starts here: offer zero-copy file bodies.
        zero_copy.offer(cycle)
        super()._start_asgi_task(cycle, app)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        self._in_head, self._received_in_head, self._head_size = True, 0, 0
        self._url_start = b""

    def _refuse(self) -> None:
        if self._refused:
            return
        self._refused = True
        self.refusals.refused(self.logger, self._client_text(), self.max_head_bytes)
        message = f"Request header fields too large: the limit is {self.max_head_bytes} bytes."
        content_type, body = b"text/plain; charset=utf-8", message.encode("ascii")
        if self._url_start.startswith(REGISTRY_PREFIX):
            # Registry clients show only the OCI error envelope.
            error = {"code": "SIZE_INVALID", "message": message, "detail": None}
            content_type, body = b"application/json", json.dumps({"errors": [error]}).encode()
        content = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: " + content_type + b"\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()

    def _client_text(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
