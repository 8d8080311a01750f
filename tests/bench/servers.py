"""Dockyard for the benchmark: fresh caches on demand, and other ASGI servers to compare.

A provisioned data folder (database with the bench user, group and token; no
cached blobs) is kept as a template; every cold round starts Dockyard on a copy
of it, so the token stays valid and the cache is empty. The same app can run
under ``dockyard serve`` (uvicorn as shipped), uvicorn with httptools and
uvloop, or granian: the last two only when ``make bench`` could install them
into ``.venv/bench-extras`` (an experiment; the app's dependencies are
untouched).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.dockyard_server import DOCKYARD, Account, DockyardServer, free_port

#: Where ``make bench`` installs the optional servers (pip --target, not the venv itself).
EXTRAS = Path(
    os.environ.get("DOCKYARD_BENCH_EXTRAS", Path(sys.executable).parent.parent / "bench-extras")
)
APP = "app.asgi:create_app"

#: Server name -> the packages it needs from EXTRAS (none: as shipped).
SERVERS: dict[str, tuple[str, ...]] = {
    "uvicorn": (),
    "uvicorn+httptools+uvloop": ("httptools", "uvloop"),
    "granian": ("granian",),
}


def server_available(name: str) -> bool:
    return all((EXTRAS / package).is_dir() for package in SERVERS[name])


@dataclass(frozen=True)
class DockyardTemplate:
    """A provisioned, empty data folder and the account that can pull through it."""

    data_dir: Path
    account: Account
    upstream_url: str

    @property
    def creds(self) -> str:
        return f"{self.account.username}:{self.account.token}"


def provision_template(workdir: Path, upstream_url: str) -> DockyardTemplate:
    server = DockyardServer(workdir / "provision", upstream_url)
    server.start(timeout=BenchDockyard.START_TIMEOUT)
    try:
        account = server.provision("bench", "bench")
    finally:
        server.stop()
    template = workdir / "template"
    shutil.copytree(server.data_dir, template)
    return DockyardTemplate(template, account, upstream_url)


class BenchDockyard(DockyardServer):
    """A Dockyard on a fresh copy of the template, under the chosen ASGI server."""

    def __init__(self, workdir: Path, template: DockyardTemplate, server: str = "uvicorn") -> None:
        super().__init__(workdir, template.upstream_url)
        self.template = template
        self.server = server
        self.account = template.account
        self.env.pop("DOCKYARD_WORKERS", None)  # as shipped: one worker per core
        if SERVERS[server]:
            self.env["PYTHONPATH"] = os.pathsep.join(
                [str(EXTRAS), *filter(None, [self.env.get("PYTHONPATH")])]
            )

    def command(self) -> list[str]:
        host, port = "127.0.0.1", str(self.port)
        if self.server == "granian":
            return [
                sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
                "--host", host, "--port", port, "--workers", "1", "--no-access-log",
                "--log-level", "warning", APP,
            ]  # fmt: skip
        if self.server == "uvicorn+httptools+uvloop":
            return [
                sys.executable, "-m", "uvicorn", "--factory", APP, "--host", host,
                "--port", port, "--loop", "uvloop", "--http", "httptools",
                "--no-access-log", "--log-level", "warning",
            ]  # fmt: skip
        return [DOCKYARD, "serve"]

    # Start-up is never timed; two workers on a shared machine may need a while.
    START_TIMEOUT = 120.0

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start on an empty cache (a new copy of the template)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.copytree(self.template.data_dir, self.data_dir)
        self.restart(timeout)

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        """Start again on the same data folder (the cache stays)."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(), env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.server} exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/-/readiness", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"dockyard under {self.server} did not become ready")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def reference(self, image: str) -> str:
        """``host/<group>/dependency_proxy/containers/<image>`` for skopeo."""
        return f"{self.prefix(self.account.group)}/{image}"

    def url_for(self, image: str, kind: str, reference: str) -> str:
        group = self.account.group
        return f"{self.url}/v2/{group}/dependency_proxy/containers/{image}/{kind}/{reference}"

    def auth_headers(self, image: str) -> dict[str, str]:
        """The token dance, done once outside any timing."""
        return {"Authorization": f"Bearer {self.registry_token(self.account, image)}"}


class Nginx:
    """nginx with sendfile serving Dockyard's own copy of a cached blob: the bar for
    serving a file from disk (issue 12: cached blobs ≥ 0.9× of it). Skipped without nginx."""

    def __init__(self, workdir: Path, root: Path) -> None:
        self.workdir = workdir
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("nginx") is not None

    def url(self, relative: str) -> str:
        return f"http://127.0.0.1:{self.port}/{relative}"

    def __enter__(self) -> Nginx:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "nginx.conf"
        # As many workers as Dockyard has (one per core); as root it must read the
        # 0600 files of the data folder it is pointed at.
        user = "user root;\n" if os.geteuid() == 0 else ""
        config.write_text(
            f"{user}worker_processes auto;\ndaemon off;\npid {self.workdir}/nginx.pid;\n"
            f"error_log {self.workdir}/error.log;\nevents {{ worker_connections 64; }}\n"
            "http { access_log off; sendfile on; tcp_nopush on;\n"
            f"  server {{ listen 127.0.0.1:{self.port}; root {self.root}; location / {{}} }} }}\n"
        )
        self.process = subprocess.Popen(
            ["nginx", "-c", str(config), "-p", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url(""), timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError("nginx did not start")

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
