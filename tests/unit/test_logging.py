"""Log lines: the request id, the instance name, text and JSON formats."""

from __future__ import annotations

import io
import json
import logging
import re
import socket

import pytest

from app.config import ConfigError, load_settings
from app.dependency_proxy.upstream import UpstreamClient
from app.logging import (
    ContextFilter,
    JsonFormatter,
    TextFormatter,
    adopt_request_id,
    outgoing_headers,
    request_id,
)
from tests.support.fake_upstream import FakeUpstream


@pytest.mark.parametrize(
    "incoming", ["0f3c2a9e-5b1d-4c38-9a7e-2f1d3c4b5a69", "abc123", "Root=1-67891233-abcdef"]
)
def test_a_sane_incoming_request_id_is_kept(incoming: str) -> None:
    assert adopt_request_id(incoming) == incoming


@pytest.mark.parametrize(
    "incoming", [None, "", "has space", "line\nbreak", "x" * 200, '"quoted"', "-leading"]
)
def test_anything_else_gets_a_new_request_id(incoming: str | None) -> None:
    new = adopt_request_id(incoming)
    assert new != incoming
    assert len(new) == 32 and new.isalnum()


def _logged(formatter: logging.Formatter, *, exc: bool = False) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter("dockyard-a"))
    logger = logging.getLogger("dockyard.test-logging")
    logger.addHandler(handler)
    logger.propagate = False
    token = request_id.set("req-42")
    try:
        if exc:
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception("failed %s", "here")
        else:
            logger.warning("pulled %s", "alpine", extra={"fields": {"status": 200}})
    finally:
        request_id.reset(token)
        logger.removeHandler(handler)
    return stream.getvalue()


def test_json_lines_carry_instance_request_id_and_fields() -> None:
    line = _logged(JsonFormatter())
    assert line.count("\n") == 1
    entry = json.loads(line)
    assert entry["message"] == "pulled alpine"
    assert entry["level"] == "warning"
    assert entry["logger"] == "dockyard.test-logging"
    assert entry["instance"] == "dockyard-a"
    assert entry["request_id"] == "req-42"
    assert entry["status"] == 200
    assert entry["time"].endswith("+00:00")


def test_a_traceback_stays_inside_one_json_line() -> None:
    text = _logged(JsonFormatter(), exc=True)
    assert text.count("\n") == 1
    entry = json.loads(text)
    assert "ValueError: boom" in entry["exception"]


def test_text_lines_carry_instance_and_request_id() -> None:
    line = _logged(TextFormatter()).strip()
    assert " dockyard-a WARNING dockyard.test-logging pulled alpine request_id=req-42" in line


def test_outgoing_headers_carry_the_current_request_id() -> None:
    assert outgoing_headers() == {}
    token = request_id.set("req-7")
    try:
        assert outgoing_headers() == {"X-Request-Id": "req-7"}
    finally:
        request_id.reset(token)


async def test_upstream_requests_carry_the_request_id() -> None:
    with FakeUpstream(auth="none") as fake:
        digest = fake.add_blob("library/alpine", b"layer")
        client = UpstreamClient(fake.url, connect_timeout=1.0, read_timeout=1.0)
        token = request_id.set("pull-1234")
        try:
            assert await client.head_blob("alpine", digest, None) == 5
        finally:
            request_id.reset(token)
            await client.aclose()
        assert fake.log and all(r.headers.get("x-request-id") == "pull-1234" for r in fake.log)


def test_log_format_and_instance_name_settings() -> None:
    settings = load_settings({"DOCKYARD_LOG_FORMAT": "JSON", "DOCKYARD_INSTANCE_NAME": "node-2"})
    assert (settings.log_format, settings.instance_name) == ("json", "node-2")
    default = load_settings({})
    assert default.log_format == "text"
    hostname = socket.gethostname()
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", hostname):
        assert default.instance_name == hostname
    else:  # made fit for a log field and a metrics label
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", default.instance_name)
    with pytest.raises(ConfigError, match="DOCKYARD_LOG_FORMAT: invalid value 'xml'"):
        load_settings({"DOCKYARD_LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError, match="DOCKYARD_INSTANCE_NAME"):
        load_settings({"DOCKYARD_INSTANCE_NAME": "two words"})
