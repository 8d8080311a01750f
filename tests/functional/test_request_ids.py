"""Every response carries its request id, and the lines logged meanwhile carry it too."""

from __future__ import annotations

import io
import logging

import httpx

from app.logging import ContextFilter, TextFormatter


async def test_a_new_request_id_is_answered_when_none_came(client: httpx.AsyncClient) -> None:
    first = (await client.get("/-/liveness")).headers["x-request-id"]
    second = (await client.get("/-/liveness")).headers["x-request-id"]
    assert len(first) == 32 and first != second


async def test_the_load_balancers_request_id_is_kept(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v2/", headers={"X-Request-Id": "lb-5f2a"})
    assert answer.status_code == 401  # the registry's own error answers carry it too
    assert answer.headers.get_list("x-request-id") == ["lb-5f2a"]


async def test_an_insane_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    answer = await client.get("/no/such/page", headers={"X-Request-Id": "a b\tc"})
    assert answer.status_code == 404
    assert answer.headers["x-request-id"] != "a b\tc"
    assert len(answer.headers["x-request-id"]) == 32


async def test_the_access_line_carries_the_request_id(client: httpx.AsyncClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter())
    handler.addFilter(ContextFilter("node-a"))
    logger = logging.getLogger("dockyard.access")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        await client.get("/-/readiness", headers={"X-Request-Id": "trace-77"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert " node-a INFO dockyard.access GET /-/readiness 200 " in lines[0]
    assert lines[0].endswith(" request_id=trace-77")
