"""`dockyard serve` with DOCKYARD_LOG_FORMAT=json: every log line is one JSON object
naming the instance, uvicorn's own lines included; /metrics names the instance."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.support.dockyard_server import DockyardServer

METRICS_TOKEN = "m" * 40
# What `dockyard serve` prints on stdout for a person (not log lines).
ANNOUNCEMENTS = ("Dockyard listens on", "External URL:", "First start:", "It is also in")


def test_json_log_lines_name_the_instance_and_the_request(tmp_path: Path) -> None:
    server = DockyardServer(
        tmp_path,
        "http://127.0.0.1:9",
        env={
            "DOCKYARD_LOG_FORMAT": "json",
            "DOCKYARD_LOG_LEVEL": "info",
            "DOCKYARD_INSTANCE_NAME": "dockyard-b",
            "DOCKYARD_METRICS_TOKEN": METRICS_TOKEN,
        },
    )
    with server:
        answer = httpx.get(f"{server.url}/v2/", headers={"X-Request-Id": "e2e-req-1"}, timeout=10)
        assert answer.headers["x-request-id"] == "e2e-req-1"
        metrics = httpx.get(
            f"{server.url}/metrics",
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
            timeout=10,
        )
        assert 'dockyard_instance_info{name="dockyard-b"} 1.0' in metrics.text
    lines = [line for line in server.log_path.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines if not line.startswith(ANNOUNCEMENTS)]
    assert len(entries) >= 3
    assert {entry["instance"] for entry in entries} == {"dockyard-b"}
    loggers = {entry["logger"] for entry in entries}
    assert "uvicorn.error" in loggers  # uvicorn's start-up lines use our formatter
    assert any(entry["message"] == "Application startup complete." for entry in entries)
    access = [entry for entry in entries if entry["logger"] == "dockyard.access"]
    pull = [entry for entry in access if entry["path"] == "/v2/"]
    assert len(pull) == 1
    assert pull[0]["request_id"] == "e2e-req-1"
    assert pull[0]["status"] == 401 and pull[0]["method"] == "GET"
