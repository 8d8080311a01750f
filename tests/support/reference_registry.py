"""Debian's ``docker-registry`` (distribution 2.8.2) as a real upstream for tests.

:class:`ReferenceRegistry` runs it with token auth pointing at a
:class:`~tests.support.token_server.TokenServer`, like Docker Hub.
:class:`PullThroughRegistry` runs it in its own pull-through mode in front of
another registry (for benchmarks against distribution's proxy).

Requests that reached the registry are counted from its access log (combined
log format on stdout, appended to ``access.log`` across restarts). distribution
writes the line before the server flushes the end of the response, so once a
client has read a whole response its request is already counted.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from tests.support.token_server import TokenServer, free_port

DOCKER_REGISTRY = "/usr/bin/docker-registry"
SERVICE = "registry.test"

_ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[\d.]+" (?P<status>\d{3}) ')
_MANIFEST_PATH = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$")
_BLOB_PATH = re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>[a-z0-9]+:[a-f0-9]+)$")


@dataclass(frozen=True)
class AccessLogEntry:
    """One request that reached the registry."""

    method: str
    path: str
    query: str
    status: int


class RegistryProcess:
    """One ``docker-registry serve`` process with its own storage and port.

    ``stop()`` then ``start()`` brings it back on the same port with the same
    storage, so tests can take the upstream away and restore it.
    """

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage = workdir / "storage"
        self.config_path = workdir / "config.yml"
        self.access_log_path = workdir / "access.log"
        self.error_log_path = workdir / "registry.log"
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log_files: list[IO[bytes]] = []
        self._baseline = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        """``host:port``, as image references and skopeo want it."""
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def extra_config(self) -> dict[str, Any]:
        """Sections added to the base configuration (auth, proxy, ...)."""
        return {}

    def config(self) -> dict[str, Any]:
        return {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.host, "secret": "dockyard-test-secret"},
            **self.extra_config(),
        }

    def start(self, timeout: float = 15.0) -> None:
        if self.running:
            return
        # JSON is YAML, and it spares us a YAML dependency.
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        access_log = self.access_log_path.open("ab")
        error_log = self.error_log_path.open("ab")
        self._log_files = [access_log, error_log]
        self._process = subprocess.Popen(
            [DOCKER_REGISTRY, "serve", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=access_log,
            stderr=error_log,
        )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        # A bare TCP connect, not an HTTP probe, so the access log only holds
        # the tests' own requests. distribution installs its handlers before
        # it listens, so an accepted connection means it is ready.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()
                return
            except OSError:
                time.sleep(0.05)
        log = self.error_log_path.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"docker-registry did not become ready on {self.url}:\n{log}")

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        for file in self._log_files:
            file.close()
        self._log_files = []

    def __enter__(self) -> RegistryProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- request counting --------------------------------------------------

    def _all_entries(self) -> list[AccessLogEntry]:
        if not self.access_log_path.exists():
            return []
        entries = []
        for line in self.access_log_path.read_text(errors="replace").splitlines():
            match = _ACCESS_LINE.search(line)
            if match is None:
                continue
            path, _, query = match["target"].partition("?")
            entries.append(AccessLogEntry(match["method"], path, query, int(match["status"])))
        return entries

    def access_log(self) -> list[AccessLogEntry]:
        """Requests that reached the registry since the last :meth:`reset_counts`."""
        return self._all_entries()[self._baseline :]

    def reset_counts(self) -> None:
        self._baseline = len(self._all_entries())

    def count(self, method: str | None = None, path: str | re.Pattern[str] | None = None) -> int:
        """Requests matching ``method`` and ``path`` (exact string or regex)."""
        total = 0
        for entry in self.access_log():
            if method is not None and entry.method != method:
                continue
            if isinstance(path, str) and entry.path != path:
                continue
            if isinstance(path, re.Pattern) and not path.search(entry.path):
                continue
            total += 1
        return total

    def blob_requests(
        self, digest: str | None = None, method: str | None = "GET", name: str | None = None
    ) -> int:
        """``/v2/<name>/blobs/<digest>`` requests (uploads are not counted)."""
        return self._count_matching(_BLOB_PATH, method, name, "digest", digest)

    def manifest_requests(
        self, reference: str | None = None, method: str | None = None, name: str | None = None
    ) -> int:
        """``/v2/<name>/manifests/<tag or digest>`` requests; method None = HEAD and GET."""
        return self._count_matching(_MANIFEST_PATH, method, name, "reference", reference)

    def _count_matching(
        self,
        pattern: re.Pattern[str],
        method: str | None,
        name: str | None,
        group: str,
        value: str | None,
    ) -> int:
        total = 0
        for entry in self.access_log():
            match = pattern.match(entry.path)
            if match is None or (method is not None and entry.method != method):
                continue
            if method is None and entry.method not in ("GET", "HEAD"):
                continue
            if name is not None and match["name"] != name:
                continue
            if value is not None and match[group] != value:
                continue
            total += 1
        return total


class ReferenceRegistry(RegistryProcess):
    """A Docker-Hub-like registry: token auth from ``token_server``."""

    def __init__(self, workdir: Path, token_server: TokenServer, port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.token_server = token_server

    def extra_config(self) -> dict[str, Any]:
        return {
            "auth": {
                "token": {
                    "realm": self.token_server.realm,
                    "service": SERVICE,
                    "issuer": self.token_server.issuer,
                    "rootcertbundle": str(self.token_server.certificate_path),
                }
            }
        }


class PullThroughRegistry(RegistryProcess):
    """distribution's own pull-through cache in front of ``remote_url`` (no auth of its own)."""

    def __init__(
        self,
        workdir: Path,
        remote_url: str,
        username: str | None = None,
        password: str | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__(workdir, port)
        self.remote_url = remote_url
        self.username = username
        self.password = password

    def extra_config(self) -> dict[str, Any]:
        proxy: dict[str, str] = {"remoteurl": self.remote_url}
        if self.username is not None and self.password is not None:
            proxy |= {"username": self.username, "password": self.password}
        return {"proxy": proxy}


class RegistryPusher:
    """Pushes blobs and manifests through the registry HTTP API, like ``docker push``.

    The token realm and service come from the registry's ``/v2/`` challenge;
    tokens (``pull,push``) are fetched per repository with Basic credentials.
    """

    def __init__(self, registry_url: str, username: str, password: str) -> None:
        self.registry_url = registry_url
        self._credentials = (username, password)
        self._client = httpx.Client(base_url=registry_url, timeout=60.0)
        self._tokens: dict[str, str] = {}
        self._challenge: dict[str, str] | None = None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RegistryPusher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _headers(self, repository: str) -> dict[str, str]:
        if self._challenge is None:
            header = self._client.get("/v2/").headers.get("www-authenticate", "")
            self._challenge = dict(re.findall(r'(\w+)="([^"]*)"', header))
        if "realm" not in self._challenge:
            return {}  # the registry asks for no auth
        if repository not in self._tokens:
            params = {
                "service": self._challenge.get("service", ""),
                "scope": f"repository:{repository}:pull,push",
            }
            response = httpx.get(
                self._challenge["realm"], params=params, auth=self._credentials, timeout=10.0
            )
            response.raise_for_status()
            self._tokens[repository] = response.json()["token"]
        return {"Authorization": f"Bearer {self._tokens[repository]}"}

    def has_blob(self, repository: str, digest: str) -> bool:
        url = f"/v2/{repository}/blobs/{digest}"
        return self._client.head(url, headers=self._headers(repository)).status_code == 200

    def _start_upload(self, repository: str) -> str:
        response = self._client.post(
            f"/v2/{repository}/blobs/uploads/", headers=self._headers(repository)
        )
        response.raise_for_status()
        return response.headers["location"]

    def _finish_upload(self, repository: str, location: str, digest: str, body: bytes) -> None:
        url = httpx.URL(self.registry_url).join(location).copy_merge_params({"digest": digest})
        headers = self._headers(repository) | {"Content-Type": "application/octet-stream"}
        response = self._client.put(url, content=body, headers=headers)
        response.raise_for_status()

    def push_blob(self, repository: str, data: bytes) -> str:
        """Monolithic upload (POST, then PUT with the whole body)."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.has_blob(repository, digest):
            self._finish_upload(repository, self._start_upload(repository), digest, data)
        return digest

    def push_blob_chunked(
        self, repository: str, data: Iterable[bytes], chunk_size: int = 8 * 1024 * 1024
    ) -> tuple[str, int]:
        """Chunked upload (POST, PATCH per chunk, PUT ?digest=); ``data`` is read once."""
        location = self._start_upload(repository)
        hasher, offset = hashlib.sha256(), 0
        for chunk in _rechunk(data, chunk_size):
            hasher.update(chunk)
            headers = self._headers(repository) | {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            }
            url = httpx.URL(self.registry_url).join(location)
            response = self._client.patch(url, content=chunk, headers=headers)
            response.raise_for_status()
            location, offset = response.headers["location"], offset + len(chunk)
        digest = "sha256:" + hasher.hexdigest()
        self._finish_upload(repository, location, digest, b"")
        return digest, offset

    def push_manifest(
        self, repository: str, reference: str | None, manifest: bytes, media_type: str
    ) -> str:
        """PUT the manifest under ``reference`` (its own digest when None)."""
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        headers = self._headers(repository) | {"Content-Type": media_type}
        url = f"/v2/{repository}/manifests/{reference or digest}"
        response = self._client.put(url, content=manifest, headers=headers)
        if response.status_code != 201:
            raise RuntimeError(f"manifest push failed: {response.status_code} {response.text}")
        if response.headers.get("docker-content-digest") != digest:
            raise RuntimeError("the registry computed another manifest digest")
        return digest


def _rechunk(data: Iterable[bytes], size: int) -> Iterator[bytes]:
    buffer = bytearray()
    for piece in data:
        buffer += piece
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)
