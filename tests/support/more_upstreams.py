"""A second and a third real upstream for tests of groups with several upstreams.

- :class:`HtpasswdRegistry`: Debian's ``docker-registry`` with HTTP Basic auth
  from an htpasswd file (bcrypt), as many private registries run it.
- :class:`AddressedReferenceRegistry`: a token-auth registry (its own
  :class:`~tests.support.token_server.TokenServer`) listening on port 80 of
  another loopback address (``127.77.N.1``), so its host has no port and can
  lead an image name the way ``ghcr.io`` does: the reference grammar allows
  no colon in a path component, so ``127.0.0.1:5001/owner/tool`` could never
  be pulled through the proxy by a real client.
"""

from __future__ import annotations

import base64
import socket
import time
from pathlib import Path
from typing import Any

import bcrypt

from tests.support.reference_registry import ReferenceRegistry, RegistryProcess, RegistryPusher
from tests.support.token_server import TokenServer

#: The htpasswd registry's one account.
HTPASSWD_USER = ("harbor-bot", "harbor-bot-secret")


def bcrypt_hash(password: str) -> str:
    """bcrypt, which distribution's htpasswd wants (cost 5, the minimum: a test account)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()


class HtpasswdRegistry(RegistryProcess):
    """A private registry behind HTTP Basic auth (``auth: htpasswd``)."""

    def __init__(
        self, workdir: Path, users: tuple[tuple[str, str], ...] = (HTPASSWD_USER,)
    ) -> None:
        super().__init__(workdir)
        self.htpasswd_path = workdir / "htpasswd"
        lines = [f"{name}:{bcrypt_hash(password)}" for name, password in users]
        self.htpasswd_path.write_text("\n".join(lines) + "\n")

    def extra_config(self) -> dict[str, Any]:
        return {"auth": {"htpasswd": {"realm": "private", "path": str(self.htpasswd_path)}}}


def free_loopback_address() -> str:
    """A 127.77.N.1 address whose port 80 is free (Linux routes all of 127/8 to lo)."""
    for number in range(2, 250):
        address = f"127.77.{number}.1"
        probe = socket.socket()
        try:
            probe.bind((address, 80))
        except OSError:
            continue
        finally:
            probe.close()
        return address
    raise RuntimeError("no free 127.77.N.1:80 address")


class AddressedReferenceRegistry(ReferenceRegistry):
    """A token-auth registry on ``<address>:80``: its host has no port."""

    def __init__(self, workdir: Path, token_server: TokenServer, address: str) -> None:
        super().__init__(workdir, token_server, port=80)
        self.address = address

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def host(self) -> str:
        return self.address

    def config(self) -> dict[str, Any]:
        config = super().config()
        config["http"]["addr"] = f"{self.address}:80"
        return config

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running:
            try:
                socket.create_connection((self.address, 80), timeout=1.0).close()
                return
            except OSError:
                time.sleep(0.05)
        log = self.error_log_path.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"docker-registry did not become ready on {self.url}:\n{log}")


class BasicPusher(RegistryPusher):
    """Pushes to a registry that wants HTTP Basic on every request."""

    def _headers(self, repository: str) -> dict[str, str]:
        raw = ":".join(self._credentials).encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
