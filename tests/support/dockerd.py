"""A Docker engine owned by a test, for `docker login` / `docker pull` for real.

Debian's `docker.io` daemon runs as root with no networking of its own
(`--iptables=false --ip6tables=false --bridge=none`), the vfs storage driver,
and its own data root, exec root, pid file and socket, so it never meets a
system Docker. 127.0.0.0/8 registries are insecure-allowed by default, so it
talks plain HTTP to a Dockyard on 127.0.0.1 (after probing HTTPS first, as
it does for every registry). The client is Debian's `/usr/bin/docker`, which
matches the daemon's API version; each client gets its own config folder, so
credentials never leak between tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"


def dockerd_available() -> str | None:
    """Why dockerd cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "dockerd needs root"
    if not (Path(DOCKERD).exists() and Path(DOCKER).exists()):
        return "docker.io is not installed (make test installs it as root)"
    return None


class Dockerd:
    """`dockerd` started on `workdir`; `docker(...)` runs the client against it."""

    def __init__(self, workdir: Path, *, registry_mirrors: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.registry_mirrors = registry_mirrors
        self.data_root = workdir / "data-root"
        self.config_path = workdir / "daemon.json"
        self.log_path = workdir / "dockerd.log"
        # Unix socket paths are short (108 bytes): keep the exec root and socket in /tmp.
        self._short = Path(tempfile.mkdtemp(prefix="dkd-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self._short / 'docker.sock'}"

    def start(self, timeout: float = 60.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {"registry-mirrors": list(self.registry_mirrors)} if self.registry_mirrors else {}
        self.config_path.write_text(json.dumps(config))
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [
                DOCKERD,
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=vfs",
                f"--config-file={self.config_path}",
                f"--data-root={self.data_root}",
                f"--exec-root={self._short / 'exec'}",
                f"--pidfile={self._short / 'docker.pid'}",
                f"--host={self.host}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dockerd exited: {self.log_path.read_text()[-3000:]}")
            probe = subprocess.run(
                [DOCKER, "--host", self.host, "version", "--format", "{{.Server.Version}}"],
                capture_output=True,
                text=True,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"dockerd did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self._short, ignore_errors=True)

    def __enter__(self) -> Dockerd:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def client(self, config_dir: Path) -> DockerClient:
        """A docker client with its own credentials folder (`DOCKER_CONFIG`)."""
        config_dir.mkdir(parents=True, exist_ok=True)
        return DockerClient(self, config_dir)


class DockerClient:
    def __init__(self, daemon: Dockerd, config_dir: Path) -> None:
        self.daemon = daemon
        self.config_dir = config_dir

    def run(
        self, *args: str, stdin: str | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        """`docker ARGS`; the caller checks the exit status and the output."""
        env = {**os.environ, "DOCKER_CONFIG": str(self.config_dir)}
        return subprocess.run(
            [DOCKER, "--host", self.daemon.host, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )

    def login(self, host: str, username: str, secret: str) -> subprocess.CompletedProcess[str]:
        return self.run("login", host, "--username", username, "--password-stdin", stdin=secret)

    def logout(self, host: str) -> subprocess.CompletedProcess[str]:
        return self.run("logout", host)

    def pull(self, reference: str) -> subprocess.CompletedProcess[str]:
        return self.run("pull", reference)

    def repo_digests(self, reference: str) -> list[str]:
        """`RepoDigests` of a pulled image (`name@sha256:…`)."""
        result = self.run("image", "inspect", "--format", "{{json .RepoDigests}}", reference)
        if result.returncode != 0:
            raise AssertionError(f"docker image inspect {reference}: {result.stderr}")
        digests: list[str] = json.loads(result.stdout)
        return digests

    def remove_image(self, reference: str) -> None:
        self.run("image", "rm", "--force", reference)
