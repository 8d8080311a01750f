"""The log: one access line per request, a request id on every line, text or JSON.

Every request gets an id: the `X-Request-Id` it came with when that looks like
an id (a load balancer's or another instance's), else a new one. It is answered
in the response's `X-Request-Id`, held in a context variable while the request
is handled (so every line logged meanwhile carries it, background work started
by the request included), and sent on to the upstream and to other instances
(`outgoing_headers`). With several instances behind a load balancer, one grep
for the id finds a pull's lines on all of them.

Every line also names the instance (`DOCKYARD_INSTANCE_NAME`). With
`DOCKYARD_LOG_FORMAT=json` each line is one JSON object; uvicorn's own lines go
through the same handler and formatter. The access line never holds headers or
query strings: some clients put credentials there.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from app import metrics
from app.config import Settings

# The ASGI types as Starlette spells them, written out: the domain imports this
# module (`outgoing_headers`) and must not pull in an HTTP framework with it.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("dockyard.access")

REQUEST_ID_HEADER = "X-Request-Id"
# What we accept from a client as its request id: short, no spaces or controls
# (it goes into log lines and headers verbatim). Anything else gets a new id.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=-]{0,127}")

request_id: ContextVar[str | None] = ContextVar("dockyard_request_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def adopt_request_id(incoming: str | None) -> str:
    """The incoming id if it is sane, else a new one."""
    if incoming and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return new_request_id()


def outgoing_headers() -> dict[str, str]:
    """Headers for a request this instance makes on behalf of the one it handles
    (upstream registry, another instance's internal endpoint): the request id."""
    current = request_id.get()
    return {REQUEST_ID_HEADER: current} if current else {}


# --- formatting ------------------------------------------------------------------------


class ContextFilter(logging.Filter):
    """Puts the instance name and the current request id on every record."""

    def __init__(self, instance: str = "") -> None:
        super().__init__()
        self.instance = instance

    def filter(self, record: logging.LogRecord) -> bool:
        record.instance = self.instance
        record.request_id = request_id.get()
        return True


class TextFormatter(logging.Formatter):
    """`time instance LEVEL logger message [request_id=...]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(instance)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "instance"):
            record.instance = "-"
        line = super().format(record)
        current = getattr(record, "request_id", None)
        if current:
            first, newline, rest = line.partition("\n")  # after the message, before a traceback
            line = f"{first} request_id={current}{newline}{rest}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, instance, request_id,
    the `fields` a caller passed in `extra`, and a formatted exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "instance": getattr(record, "instance", None),
        }
        if current := getattr(record, "request_id", None):
            entry["request_id"] = current
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update({key: value for key, value in fields.items() if key not in entry})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


def logging_config(settings: Settings) -> dict[str, Any]:
    """The logging configuration of `dockyard serve`, for `logging.config.dictConfig`.

    uvicorn applies it again in every worker process it starts, so with
    DOCKYARD_WORKERS > 1 the workers' own log lines (access log, warnings) are
    not lost. uvicorn's loggers use our handler: one format for every line.
    """
    level = settings.log_level.upper()
    # Tortoise logs every connection open/close and httpx every upstream request
    # (URLs with query strings) at INFO: keep our log readable and to the point.
    quiet = level if logging.getLevelName(level) > logging.WARNING else "WARNING"
    formatter = JsonFormatter if settings.log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": f"{__name__}.ContextFilter", "instance": settings.instance_name}
        },
        "formatters": {"dockyard": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "dockyard": {
                "class": "logging.StreamHandler",
                "formatter": "dockyard",
                "filters": ["context"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["dockyard"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": ["dockyard"], "level": level, "propagate": False},
            **{name: {"level": quiet} for name in ("tortoise", "httpx", "httpcore")},
        },
    }


def configure_logging(settings: Settings) -> None:
    import logging.config

    logging.config.dictConfig(logging_config(settings))


# --- the access log --------------------------------------------------------------------


class AccessLogMiddleware:
    """Gives the request its id, answers it, and logs one line when the response ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        current = adopt_request_id(incoming)
        token = request_id.set(current)

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", current.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            # The router wrote the matched endpoint into the scope: a bounded label.
            endpoint = scope.get("endpoint")
            route = getattr(endpoint, "__name__", None) or "unmatched"
            metrics.http_requests.labels(route, str(status or 0)).inc()
            duration = (time.perf_counter() - started) * 1000
            # The path only: query strings may carry credentials in some clients.
            access_log.info(
                "%s %s %s %.1fms",
                scope["method"],
                scope["path"],
                status or "-",
                duration,
                extra={
                    "fields": {
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status or None,
                        "duration_ms": round(duration, 1),
                    }
                },
            )
            request_id.reset(token)
