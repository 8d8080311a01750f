"""Browsers of the tenants: each signs in once with its password and keeps its session."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from starlette.applications import Starlette

from tests.functional.web.conftest import csrf_of
from tests.security.tenancy import BASE_URL, Credential


@dataclass
class Browser:
    http: httpx.AsyncClient
    csrf: str  # the session's CSRF token (an anonymous session's when sign-in was refused)


class TenantBrowsers:
    def __init__(self, app: Starlette) -> None:
        self.app = app
        self._open: dict[str, Browser] = {}

    async def of(self, credential: Credential) -> Browser:
        """The browser signed in with `credential` (a password), or refused trying."""
        if credential.username not in self._open:
            transport = httpx.ASGITransport(app=self.app)
            http = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
            form = await http.get("/users/sign_in")
            data = {
                "authenticity_token": csrf_of(form.text),
                "login": credential.username,
                "password": credential.secret,
            }
            await http.post("/users/sign_in", data=data)
            page = await http.get("/", follow_redirects=True)
            self._open[credential.username] = Browser(http, csrf_of(page.text))
        return self._open[credential.username]

    async def close(self) -> None:
        for browser in self._open.values():
            await browser.http.aclose()
