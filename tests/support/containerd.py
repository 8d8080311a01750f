"""A containerd daemon owned by a test, for pulling with ``ctr``.

It runs on its own socket with its own root, state and temp folders, so it
never meets a system containerd. Its generated configuration disables the CRI
plugin and every plugin that writes outside those folders or needs kernel
support or cgroups a pull does not use (the pull only needs the content store,
the metadata database and, for unpacking, a snapshotter).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

CONTAINERD = "containerd"
CTR = "ctr"
NAMESPACE = "dockyard-e2e"
#: Longest path a unix socket may have on Linux (sun_path is 108 bytes).
_SOCKET_PATH_MAX = 100

DISABLED_PLUGINS = (
    "io.containerd.grpc.v1.cri",
    # Writes to /opt/containerd.
    "io.containerd.internal.v1.opt",
    # Need kernel modules or a dedicated file system.
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    # Running containers (cgroups, shims): a pull never does.
    "io.containerd.monitor.v1.cgroups",
    "io.containerd.runtime.v1.linux",
    "io.containerd.runtime.v2.task",
    "io.containerd.service.v1.tasks-service",
    "io.containerd.grpc.v1.tasks",
    "io.containerd.internal.v1.restart",
)


def _toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string.
    return json.dumps(value)


class Containerd:
    """``containerd`` started on ``workdir``; ``ctr(...)`` talks to it."""

    def __init__(self, workdir: Path, containerd: str = CONTAINERD, ctr: str = CTR) -> None:
        self.workdir = workdir
        self.containerd = containerd
        self.ctr_path = ctr
        self.root = workdir / "root"
        self.state = workdir / "state"
        self.temp = workdir / "tmp"
        self.config_path = workdir / "config.toml"
        self.log_path = workdir / "containerd.log"
        self._socket_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def address(self) -> str:
        assert self._socket_dir is not None, "containerd is not started"
        return str(self._socket_dir / "containerd.sock")

    def config(self) -> str:
        disabled = ", ".join(_toml_string(name) for name in DISABLED_PLUGINS)
        return "\n".join(
            [
                "version = 2",
                f"root = {_toml_string(str(self.root))}",
                f"state = {_toml_string(str(self.state))}",
                f"temp = {_toml_string(str(self.temp))}",
                f"disabled_plugins = [{disabled}]",
                "",
                "[grpc]",
                f"  address = {_toml_string(self.address)}",
                "",
                "[ttrpc]",
                f"  address = {_toml_string(self.address + '.ttrpc')}",
                "",
                "[debug]",
                '  address = ""',
                '  level = "info"',
                "",
                "[metrics]",
                '  address = ""',
                "",
            ]
        )

    def start(self, timeout: float = 20.0) -> None:
        if self._process is not None:
            return
        for folder in (self.workdir, self.root, self.state, self.temp):
            folder.mkdir(parents=True, exist_ok=True)
        socket_dir = self.workdir / "run"
        if len(str(socket_dir / "containerd.sock.ttrpc")) > _SOCKET_PATH_MAX:
            socket_dir = Path(tempfile.mkdtemp(prefix="dockyard-ctrd-", dir="/tmp"))
        socket_dir.mkdir(parents=True, exist_ok=True)
        self._socket_dir = socket_dir
        self.config_path.write_text(self.config())
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [self.containerd, "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = self.log_path.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"containerd exited at start-up:\n{log}")
            if Path(self.address).exists():
                probe = self.ctr("version", check=False, timeout=5)
                if probe.returncode == 0:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"containerd did not answer on {self.address} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate, wait, and kill if it does not exit in time."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._socket_dir is not None and not self._socket_dir.is_relative_to(self.workdir):
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        self._socket_dir = None

    def __enter__(self) -> Containerd:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, args: tuple[str, ...], timeout: float) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [self.ctr_path, "--address", self.address, "--namespace", NAMESPACE, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )

    def ctr(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``ctr --address SOCKET --namespace NS ARGS``; output as text."""
        result = self._run(args, timeout)
        text = subprocess.CompletedProcess(
            result.args,
            result.returncode,
            result.stdout.decode(errors="replace"),
            result.stderr.decode(errors="replace"),
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"ctr {' '.join(args)} failed ({result.returncode}):\n{text.stderr}"
            )
        return text

    def content(self, digest: str) -> bytes:
        """The exact bytes the content store holds for ``digest``."""
        result = self._run(("content", "get", digest), timeout=60)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        return result.stdout

    def image_target(self, reference: str) -> tuple[str, str]:
        """(media type, digest) of an image record, from ``ctr images ls``."""
        for line in self.ctr("images", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == reference:
                return fields[1], fields[2]
        raise AssertionError(f"{reference} is not in `ctr images ls`")

    def content_digests(self) -> set[str]:
        """Digests in the content store (``ctr content ls -q``)."""
        return set(self.ctr("content", "ls", "--quiet").stdout.split())
