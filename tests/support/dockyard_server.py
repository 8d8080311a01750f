"""A live Dockyard (`dockyard serve` under uvicorn) on 127.0.0.1 for end-to-end tests.

Everything goes through real entry points: the server is the console script,
users, groups and tokens are made with the `dockyard` CLI, and clients talk
HTTP to it like docker, skopeo or a browser would.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
DOCKYARD = shutil.which("dockyard", path=str(BIN)) or "dockyard"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def s3_settings(seaweed: Any, prefix: str, *, redirect: bool = False) -> dict[str, str]:
    """The environment of a Dockyard that keeps its blobs in the test SeaweedFS bucket
    (`tests/support/seaweedfs.py`), credentials by the standard AWS variables."""
    from tests.support.fixtures import S3_BUCKET
    from tests.support.seaweedfs import REGION

    return {
        **seaweed.env,
        "DOCKYARD_S3_BUCKET": S3_BUCKET,
        "DOCKYARD_S3_ENDPOINT_URL": seaweed.endpoint,
        "DOCKYARD_S3_REGION": REGION,
        "DOCKYARD_S3_PREFIX": prefix,
        "DOCKYARD_S3_REDIRECT": "true" if redirect else "false",
    }


@dataclass(frozen=True)
class Account:
    """A user with a personal access token, Owner of `group`."""

    username: str
    password: str
    token: str
    group: str

    @property
    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.token}".encode()).decode()


class DockyardServer:
    def __init__(
        self,
        workdir: Path,
        upstream_url: str,
        *,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.port = port or free_port()
        self.env = {
            **{key: value for key, value in os.environ.items() if not key.startswith("DOCKYARD_")},
            "DOCKYARD_DATA_DIR": str(self.data_dir),
            "DOCKYARD_HOST": "127.0.0.1",
            "DOCKYARD_PORT": str(self.port),
            "DOCKYARD_UPSTREAM_URL": upstream_url,
            "DOCKYARD_UPSTREAM_CONNECT_TIMEOUT": "2",
            "DOCKYARD_UPSTREAM_READ_TIMEOUT": "5",
            "DOCKYARD_LOG_LEVEL": "warning",
            # One worker unless a test asks for more: `dockyard serve` starts one per
            # core, and on the shared two-core machine many live servers with two
            # workers each slow the whole suite (the bench uses the default).
            "DOCKYARD_WORKERS": "1",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "dockyard.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def prefix(self, group: str) -> str:
        return f"{self.host}/{group}/dependency_proxy/containers"

    def start(self, timeout: float = 120.0) -> None:
        # Generous: a first start (migrations, the root password's argon2 hash) took
        # 20 s alone on a loaded 2-core machine, and over 30 s beside other suites.
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [DOCKYARD, "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockyard exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/-/readiness", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"dockyard did not become ready in {timeout:.0f} s: "
            f"{self.log_path.read_text(errors='replace')[-2000:]}"
        )

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> DockyardServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def cli(self, *args: str, stdin: str | None = None) -> Any:
        """Run `dockyard ARGS --json` against this server's data and return the JSON."""
        result = subprocess.run(
            [DOCKYARD, *args, "--json"],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise AssertionError(f"dockyard {' '.join(args)} failed: {result.stderr}")
        return json.loads(result.stdout)

    def user(self, username: str, password: str, *, admin: bool = False) -> Any:
        """Create a user with the CLI (the password goes through stdin, as an operator's would)."""
        return self.cli(
            "user",
            "create",
            username,
            "--email",
            f"{username}@example.com",
            "--password-stdin",
            *(["--admin"] if admin else []),
            stdin=password,
        )

    def provision(self, username: str, group: str, *, scopes: str = "api") -> Account:
        """A user who owns `group` (created with its parents) and has a token."""
        password = f"{username}-password"
        self.cli(
            "user", "create", username, "--email", f"{username}@example.com", "--password", password
        )
        existing = {item["full_path"] for item in self.cli("group", "list")["groups"]}
        parts = group.split("/")
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            if path not in existing:
                self.cli("group", "create", path)
        self.cli("member", "add", group, username, "--role", "owner")
        token = self.cli("token", "create", username, "--name", "e2e", "--scopes", scopes)["token"]
        return Account(username=username, password=password, token=token, group=group)

    def registry_token(self, account: Account, image: str) -> str:
        """A registry JWT for pulling `image` from the account's group, as docker gets one."""
        scope = f"repository:{account.group}/dependency_proxy/containers/{image}:pull"
        answer = httpx.get(
            f"{self.url}/jwt/auth",
            params={"service": "dependency_proxy", "scope": scope},
            headers={"Authorization": account.basic},
            timeout=10,
        )
        answer.raise_for_status()
        return str(answer.json()["token"])
