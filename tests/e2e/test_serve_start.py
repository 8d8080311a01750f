"""What `make run` (`dockyard serve`) prints, and what it does when the port is taken:
the console script started for real, as a newcomer runs it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.dockyard_server import DOCKYARD, DockyardServer

pytestmark = pytest.mark.e2e


def serve_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    return {
        **{key: value for key, value in os.environ.items() if not key.startswith("DOCKYARD_")},
        "DOCKYARD_DATA_DIR": str(data_dir),
        "DOCKYARD_PORT": str(port),
        **extra,
    }


def test_a_second_dockyard_on_a_busy_port_says_so_before_doing_anything(tmp_path: Path) -> None:
    with socket.socket() as first:  # the Dockyard that is already running
        first.bind(("127.0.0.1", 0))
        first.listen()
        port = first.getsockname()[1]
        result = subprocess.run(
            [DOCKYARD, "serve"],
            env=serve_env(tmp_path / "data", port),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr == (
        f"error: port {port} is in use on 127.0.0.1 — another Dockyard? "
        "Set DOCKYARD_PORT (or --port)\n"
    )
    # Nothing was printed as if it served, and nothing was created or migrated.
    assert result.stdout == ""
    assert not (tmp_path / "data").exists()


def test_the_listen_address_and_the_external_url_are_printed_apart(tmp_path: Path) -> None:
    server = DockyardServer(
        tmp_path,
        "http://127.0.0.1:9",
        env={"DOCKYARD_EXTERNAL_URL": "https://dockyard.example.com"},
    )
    with server:
        lines = server.log_path.read_text().splitlines()
    assert f"Dockyard listens on 127.0.0.1:{server.port}" in lines
    assert "External URL: https://dockyard.example.com (DOCKYARD_EXTERNAL_URL)" in lines
    assert (
        f"It is also in {server.data_dir / 'initial_root_password'} (mode 0600): sign in at "
        "https://dockyard.example.com/users/sign_in, choose a new password, delete the file."
    ) in lines


def test_a_proxy_in_front_without_the_external_url_is_named_in_the_log(tmp_path: Path) -> None:
    server = DockyardServer(
        tmp_path, "http://127.0.0.1:9", env={"DOCKYARD_TRUSTED_PROXIES": "127.0.0.1"}
    )
    with server:
        # What nginx sends by default: the backend's address as Host, the public name
        # in X-Forwarded-Host, the client in X-Forwarded-For (uvicorn rewrites the client).
        for _ in range(3):
            answer = httpx.get(
                f"{server.url}/users/sign_in",
                headers={
                    "X-Forwarded-For": "203.0.113.5",
                    "X-Forwarded-Host": "dockyard.example.com",
                },
            )
            assert answer.status_code == 200
        log = server.log_path.read_text()
    warning = (
        "requests arrive for host dockyard.example.com, but the external URL is "
        f"http://127.0.0.1:{server.port}: docker is sent there to log in"
    )
    assert log.count(warning) == 1, log


def test_with_several_workers_their_log_lines_are_not_lost(tmp_path: Path) -> None:
    server = DockyardServer(
        tmp_path, "http://127.0.0.1:9", env={"DOCKYARD_WORKERS": "2", "DOCKYARD_LOG_LEVEL": "info"}
    )
    with server:
        assert httpx.get(f"{server.url}/users/sign_in").status_code == 200
        httpx.get(f"{server.url}/users/sign_in", headers={"Host": "buildhost.lan:8080"})
    log = server.log_path.read_text()
    # Written in a worker process: the access log, and a warning of ours.
    assert re.search(r" INFO dockyard\.access GET /users/sign_in 200 ", log), log
    assert " WARNING dockyard requests arrive for host buildhost.lan:8080" in log, log
