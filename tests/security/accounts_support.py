"""Live-server helpers for the accounts security tests: a real `dockyard serve` on
127.0.0.1, and clients that connect from a chosen loopback address (127.0.0.2 works
on Linux loopback), so the server sees two different client addresses."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.dockyard_server import DockyardServer

PASSWORD = "correct horse battery staple"
OWNER_ADDRESS = "127.0.0.1"
ATTACKER_ADDRESS = "127.0.0.2"
# Nothing here pulls an image: the upstream is never contacted.
NO_UPSTREAM = "http://127.0.0.1:9"
CSRF_RE = re.compile(r'name="authenticity_token" value="([^"]+)"')


def live_server(workdir: Path, **env: str) -> DockyardServer:
    return DockyardServer(workdir, NO_UPSTREAM, env=env)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    with live_server(tmp_path_factory.mktemp("dockyard")) as running:
        yield running


class WebClient:
    """A browser-like client (cookies, CSRF tokens) bound to one source address."""

    def __init__(self, base_url: str, address: str = OWNER_ADDRESS) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            transport=httpx.HTTPTransport(local_address=address),
            headers={"User-Agent": f"security-test from {address}"},
            timeout=30,
        )

    def close(self) -> None:
        self.http.close()

    def csrf(self, page: str) -> str:
        match = CSRF_RE.search(self.http.get(page).text)
        assert match, f"{page} has no CSRF field"
        return match.group(1)

    def post(self, url: str, data: dict[str, str], page: str | None = None) -> httpx.Response:
        token = self.csrf(page or url)
        return self.http.post(url, data={"authenticity_token": token, **data})

    def sign_in(self, login: str, password: str = PASSWORD) -> httpx.Response:
        return self.post("/users/sign_in", {"login": login, "password": password})

    @property
    def cookie(self) -> str:
        value = self.http.cookies.get("_dockyard_session")
        assert value, "no session cookie"
        return value

    def signed_in(self) -> bool:
        answer = self.http.get("/-/user_settings/personal_access_tokens")
        return answer.status_code == 200


@pytest.fixture
def web(server: DockyardServer) -> Iterator[type[WebClient]]:
    """Make WebClients against the module's server; all are closed afterwards."""
    made: list[WebClient] = []

    class Made(WebClient):
        def __init__(self, address: str = OWNER_ADDRESS) -> None:
            super().__init__(server.url, address)
            made.append(self)

    yield Made
    for client in made:
        client.close()
