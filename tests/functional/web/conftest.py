"""Helpers for the web page tests: users, groups, signed-in clients, CSRF tokens."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette

from app.accounts import records as accounts
from app.accounts.models import User
from app.groups import records as groups
from app.groups.models import AccessLevel, Group

PASSWORD = "correct horse battery staple"
CSRF_RE = re.compile(r'name="authenticity_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


@dataclass
class Browser:
    """An httpx client with a session, as a person in a browser would use it."""

    http: httpx.AsyncClient

    async def get(self, url: str) -> httpx.Response:
        return await self.http.get(url)

    async def post(
        self, url: str, data: Mapping[str, str | Sequence[str]], *, page: str | None = None
    ) -> httpx.Response:
        """Post a form with the CSRF token of `page` (default: the form's own URL)."""
        form_page = await self.http.get(page or url)
        return await self.http.post(
            url, data={"authenticity_token": csrf_of(form_page.text), **data}
        )

    async def sign_in(self, login: str, password: str = PASSWORD) -> httpx.Response:
        return await self.post("/users/sign_in", {"login": login, "password": password})


@pytest.fixture
async def make_browser(
    app: Starlette, client: httpx.AsyncClient
) -> AsyncIterator[Callable[..., Awaitable[Browser]]]:
    """New independent browsers (separate cookie jars) on the same running app,
    each from its own client address (127.0.0.1 unless told)."""
    opened: list[httpx.AsyncClient] = []

    async def make(address: str = "127.0.0.1", user_agent: str = "pytest-browser") -> Browser:
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 50000)),
            base_url="http://dockyard.test",
            headers={"User-Agent": user_agent},
        )
        opened.append(http)
        return Browser(http)

    yield make
    for http in opened:
        await http.aclose()


async def make_user(username: str, *, admin: bool = False) -> User:
    return await accounts.create_user(username, f"{username}@example.com", PASSWORD, is_admin=admin)


async def make_group(path: str, members: dict[User, AccessLevel]) -> Group:
    group = await groups.create_group(path)
    for user, level in members.items():
        await groups.add_member(group, user, level)
    return group


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> User:
    return await make_user("olivia")


@pytest.fixture
async def guest(client: httpx.AsyncClient) -> User:
    return await make_user("gus")


@pytest.fixture
async def group(owner: User, guest: User) -> Group:
    return await make_group("acme", {owner: AccessLevel.OWNER, guest: AccessLevel.GUEST})


@pytest.fixture
async def as_owner(make_browser: Callable[..., Awaitable[Browser]], owner: User) -> Browser:
    browser = await make_browser()
    response = await browser.sign_in("olivia")
    assert response.status_code == 303
    return browser


@pytest.fixture
async def as_guest(make_browser: Callable[..., Awaitable[Browser]], guest: User) -> Browser:
    browser = await make_browser()
    response = await browser.sign_in("gus")
    assert response.status_code == 303
    return browser


MakeBrowser = Callable[..., Awaitable[Browser]]
