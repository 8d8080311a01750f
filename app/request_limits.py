"""A cap on request bodies, in one place for every surface that reads one.

GraphQL, the web forms and the registry's token POST read whole bodies into
memory (JSON, form parsing); nothing else limits them. `RequestBodyLimit`
refuses a body over the limit before the endpoint sees it: at once when the
declared `Content-Length` is too large (the body is never read), and as soon as
the streamed bytes pass the limit otherwise (chunked uploads). The refusal is
written by the surface's own `TooLargeResponder` (GraphQL errors, an OCI error,
an error page), chosen by the composition root.

Whenever a response goes out before the request's body was read to its end
(a refusal here, or a route such as the registry's 405 that never reads it),
the response says `Connection: close`: the server then closes the connection
instead of reading and discarding the rest of the body to keep it alive.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TooLargeResponder = Callable[[Request, str], Awaitable[Response]]


class BodyTooLarge(Exception):
    """Raised from `receive` to stop an endpoint that is reading an oversized body."""


def too_large_message(max_bytes: int) -> str:
    return (
        f"the request body is larger than {max_bytes} bytes, "
        "the limit this server accepts (DOCKYARD_MAX_BODY_BYTES)"
    )


def _body_headers(scope: Scope) -> tuple[int | None, bool]:
    """The declared Content-Length (None if absent or invalid) and whether it is chunked."""
    declared, chunked = None, False
    for name, value in scope["headers"]:
        if name == b"content-length":
            declared = int(value) if value.isdigit() else None
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
    return declared, chunked


class RequestBodyLimit:
    """ASGI middleware: bodies up to `max_bytes`, except under the `unlimited` prefixes
    (routes that never read a body, such as the read-only registry)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        too_large: TooLargeResponder,
        unlimited: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.too_large = too_large
        self.unlimited = unlimited

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _body_headers(scope)
        if not declared and not chunked:  # no body (GET, HEAD, ...): nothing to watch
            await self.app(scope, receive, send)
            return
        limited = not scope["path"].startswith(self.unlimited)
        if limited and declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        await self._watch(scope, receive, send, limited=limited)

    async def _watch(self, scope: Scope, receive: Receive, send: Send, *, limited: bool) -> None:
        """Run the endpoint, counting the body it reads and stopping it past the limit."""
        received = 0
        body_pending = True
        exceeded = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded, body_pending
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_pending = bool(message.get("more_body", False))
                if limited and received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded:
                return  # the endpoint caught BodyTooLarge and answered: ours goes out instead
            if message["type"] == "http.response.start":
                response_started = True
                if body_pending:
                    message = {**message, "headers": [*message["headers"], *_CLOSE]}
            await send(message)

        with contextlib.suppress(BodyTooLarge):
            await self.app(scope, counting_receive, guarded_send)
        if exceeded and not response_started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.too_large(Request(scope), too_large_message(self.max_bytes))
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


_CLOSE = [(b"connection", b"close")]
