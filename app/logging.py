"""One log line per request: method, path, status, duration. Never headers or query strings."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics

access_log = logging.getLogger("dockyard.access")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            # The router wrote the matched endpoint into the scope: a bounded label.
            endpoint = scope.get("endpoint")
            route = getattr(endpoint, "__name__", None) or "unmatched"
            metrics.http_requests.labels(route, str(status or 0)).inc()
            # The path only: query strings may carry credentials in some clients.
            access_log.info(
                "%s %s %s %.1fms",
                scope["method"],
                scope["path"],
                status or "-",
                (time.perf_counter() - started) * 1000,
            )
