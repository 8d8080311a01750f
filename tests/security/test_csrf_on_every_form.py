"""Every form, and every GraphQL mutation, refuses a request that lacks the session's
CSRF token, and changes nothing.

The forms are found by walking the web routes (group pages spelled out for one
group), so a new form is attacked without anyone remembering to list it. Each
form is posted by a signed-in admin who is also Owner of the group: without a
token, and with another session's token, it must answer the 403 page and leave
every database row (and the session) as it was; with the right token the same
post must change something, which proves the check above could have failed.
A form (or mutation) missing from the tables below fails the suite until it
says what it changes.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from app import db
from app.accounts import records as accounts
from app.accounts import user_sessions
from app.config import Settings, load_settings
from app.dependency_proxy.models import Upstream
from app.gql.schema import schema
from app.groups import access_tokens, deploy_tokens
from app.groups import records as groups
from app.groups.models import AccessLevel
from tests.functional.web.conftest import PASSWORD, csrf_of, make_user
from tests.security.tenancy_state import database_state
from tests.support.cache_rows import add_manifest
from tests.support.operator import OPERATOR
from web import routes as web_routes
from web.groups import GROUP_PAGES

GROUP_PAGES_ROUTE = "/groups/{full_path:path}"
BOTH = ["read_registry", "write_registry"]
CSRF_MESSAGE = "could not be verified"

# What each form does when its token is right; None posts from a signed-out browser.
FORM_CHANGES: dict[str, tuple[str | None, dict[str, str | list[str]]]] = {
    "/users/sign_in": (None, {"login": "gus", "password": PASSWORD}),
    "/users/sign_out": ("ada", {}),
    "/groups": ("ada", {"parent": "", "path": "newgroup", "name": ""}),
    "/groups/acme/-/dependency_proxy/clear_cache": ("ada", {}),
    # acme's one cached image, alpine:3.19, is the first manifest row.
    "/groups/acme/-/dependency_proxy/images/delete": ("ada", {"manifest_id": "1"}),
    "/groups/acme/-/dependency_proxy/images/pin": ("ada", {"manifest_id": "1", "pinned": "1"}),
    "/groups/acme/-/dependency_proxy/warm": ("ada", {"images": "alpine:3.19"}),
    "/groups/acme/-/settings/packages_and_registries": (
        "ada",
        {"revalidation_interval": "60"},  # and `enabled` unchecked: switched off
    ),
    "/groups/acme/-/settings/packages_and_registries/ttl": ("ada", {"enabled": "on", "ttl": "30"}),
    "/groups/acme/-/settings/packages_and_registries/credentials": (
        "ada",
        {"identity": "someone", "secret": "a-docker-hub-token"},
    ),
    "/groups/acme/-/settings/packages_and_registries/upstreams": (
        "ada",
        {"url": "https://ghcr.io", "username": "octo", "password": "ghp_token"},
    ),
    "/groups/acme/-/settings/packages_and_registries/upstreams/remove": ("ada", {"name": "quay"}),
    "/groups/acme/-/settings/packages_and_registries/size_limit": ("ada", {"size_limit": "5GiB"}),
    "/groups/acme/-/group_members": ("ada", {"username": "vic", "role": "developer"}),
    "/groups/acme/-/group_members/role": ("ada", {"username": "gus", "role": "reporter"}),
    "/groups/acme/-/group_members/remove": ("ada", {"username": "gus"}),
    "/groups/acme/-/group_members/deploy_tokens": (
        "ada",
        {"name": "new-ci", "scopes": BOTH, "expires_at": ""},
    ),
    "/groups/acme/-/group_members/deploy_tokens/revoke": ("ada", {"name": "old-ci"}),
    "/-/user_settings/personal_access_tokens": (
        "ada",
        {"name": "new", "scopes": ["api"], "expires_at": ""},
    ),
    "/-/user_settings/personal_access_tokens/revoke": ("ada", {"name": "old"}),
    "/-/user_settings/personal_access_tokens/rotate": ("ada", {"name": "old"}),
    "/groups/acme/-/settings/access_tokens": (
        "ada",
        {"name": "new-bot", "role": "reporter", "scopes": ["read_api"], "expires_at": ""},
    ),
    "/groups/acme/-/settings/access_tokens/revoke": ("ada", {"name": "old-bot"}),
    "/admin/settings": ("ada", {"registry_token_expire_minutes": "30"}),
    "/admin/dependency_proxy/credentials": ("ada", {"identity": "hub", "secret": "hub-token"}),
    "/admin/users": (
        "ada",
        {"username": "newbie", "email": "newbie@example.com", "password": "long-password-1"},
    ),
    "/admin/users/action": ("ada", {"username": "gus", "action": "block"}),
    "/admin/users/password": ("ada", {"username": "gus", "password": "a-new-long-password-9"}),
    "/-/user_settings/password/edit": (
        "ada",
        {
            "current_password": PASSWORD,
            "new_password": "another long passphrase",
            "password_confirmation": "another long passphrase",
        },
    ),
    # ada's session from another browser, made when the world was built (id 1).
    "/-/user_settings/active_sessions/revoke": ("ada", {"id": "1"}),
    "/-/user_settings/active_sessions/revoke_others": ("ada", {}),
}

# POST routes that are not forms, and why they need no CSRF token.
NOT_FORMS = {
    "/jwt/auth": "the credentials are in the request itself, no cookie is used",
    "/v2/{path:path}": "the registry is read-only: every write is a 405",
    "/api/graphql": "the session counts only with the X-CSRF-Token header (tested below)",
}


def _post_routes(routes: list[BaseRoute], prefix: str = "") -> list[Route]:
    found: list[Route] = []
    for route in routes:
        if isinstance(route, Mount):
            found += _post_routes(list(route.routes), prefix + route.path)
        elif isinstance(route, Route) and "POST" in (route.methods or ()):
            found.append(route)
    return found


def form_urls() -> tuple[list[str], list[str]]:
    """(every form URL of the web surface for group acme, routes that could not be spelled out)."""
    urls, unknown = [], []
    for route in _post_routes(web_routes.routes):
        if route.path == GROUP_PAGES_ROUTE:
            posts = sorted(page for method, page in GROUP_PAGES if method == "POST")
            urls += [f"/groups/acme/-/{page}" for page in posts]
        elif route.param_convertors:
            unknown.append(route.path)
        else:
            urls.append(route.path)
    return urls, unknown


FORMS, UNSPELLED = form_urls()


def test_every_post_route_is_a_checked_form_or_explained(app: Starlette) -> None:
    assert UNSPELLED == [], "teach form_urls() how to spell these routes for group acme"
    web_paths = {route.path for route in _post_routes(web_routes.routes)}
    everywhere = {route.path for route in _post_routes(list(app.routes))}
    assert everywhere - web_paths == set(NOT_FORMS)
    assert set(FORM_CHANGES) <= set(FORMS), "FORM_CHANGES names a form that no longer exists"


@dataclass
class Session:
    http: httpx.AsyncClient
    token: str

    async def signed_in(self) -> bool:
        return (await self.http.get("/")).status_code == 200


@dataclass
class Site:
    open_session: Callable[[str | None], Awaitable[Session]]

    async def state(self, session: Session) -> tuple[dict[str, list[str]], bool]:
        return await database_state(), await session.signed_in()


async def _build_world() -> None:
    """ada (admin, Owner of acme), gus (Guest), vic (no group); one cached manifest in
    acme; a personal access token (id 1), a deploy token, a group access token and another
    session of ada's to revoke."""
    ada = await make_user("ada", admin=True)
    gus, _ = await make_user("gus"), await make_user("vic")
    acme = await groups.create_group("acme", owner=ada)
    await groups.add_member(acme, gus, AccessLevel.GUEST)
    await add_manifest(acme, "alpine", "3.19")
    await Upstream.create(group_id=acme.id, position=1, name="docker-hub", url=None)
    await Upstream.create(group_id=acme.id, position=2, name="quay", url="https://quay.io")
    await accounts.create_personal_access_token(ada, "old", "api")
    await deploy_tokens.create_deploy_token(OPERATOR, acme, "old-ci", ",".join(BOTH))
    await access_tokens.create_group_access_token(OPERATOR, acme, "old-bot", "guest", "read_api")
    await user_sessions.start(ada, "127.0.0.9", "another browser")


@pytest.fixture(scope="module")
def csrf_world_template(tmp_path_factory: pytest.TempPathFactory, migrated_template: Path) -> Path:
    """The world built once (password hashing is slow on purpose); each test gets a copy."""
    folder = tmp_path_factory.mktemp("csrf-world")
    path = folder / "dockyard.sqlite3"
    shutil.copy(migrated_template, path)

    async def build() -> None:
        await db.init_db(load_settings({}, data_dir=folder, database_url=f"sqlite://{path}"))
        try:
            await _build_world()
        finally:
            await db.close_db()

    asyncio.run(build())
    return path


@pytest.fixture
def settings(settings: Settings, csrf_world_template: Path) -> Settings:
    shutil.copy(csrf_world_template, settings.data_dir / "dockyard.sqlite3")
    return settings


@pytest.fixture
async def csrf_site(app: Starlette, client: httpx.AsyncClient) -> AsyncIterator[Site]:
    opened: list[httpx.AsyncClient] = []

    async def open_session(username: str | None) -> Session:
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://dockyard.test"
        )
        opened.append(http)
        form = await http.get("/users/sign_in")
        if username is None:
            return Session(http, csrf_of(form.text))
        data = {"authenticity_token": csrf_of(form.text), "login": username, "password": PASSWORD}
        assert (await http.post("/users/sign_in", data=data)).status_code == 303
        return Session(http, csrf_of((await http.get("/")).text))

    yield Site(open_session)
    for http in opened:
        await http.aclose()


def _form(url: str) -> tuple[str | None, dict[str, Any]]:
    return FORM_CHANGES.get(url, ("ada", {"name": "x", "username": "gus"}))


@pytest.mark.parametrize("url", FORMS)
async def test_a_form_without_the_session_token_is_refused_and_changes_nothing(
    csrf_site: Site, url: str
) -> None:
    actor, data = _form(url)
    session, other = await csrf_site.open_session(actor), await csrf_site.open_session(None)
    before = await csrf_site.state(session)
    for presented in ({}, {"authenticity_token": other.token}, {"authenticity_token": ""}):
        answer = await session.http.post(url, data={**data, **presented})
        assert answer.status_code == 403, (presented, answer.status_code)
        assert CSRF_MESSAGE in answer.text
        assert await csrf_site.state(session) == before


@pytest.mark.parametrize("url", FORMS)
async def test_the_same_form_with_the_token_changes_something(csrf_site: Site, url: str) -> None:
    if url not in FORM_CHANGES:
        pytest.fail(f"{url} is a new form: add what it changes to FORM_CHANGES")
    actor, data = FORM_CHANGES[url]
    session = await csrf_site.open_session(actor)
    before = await csrf_site.state(session)
    answer = await session.http.post(url, data={**data, "authenticity_token": session.token})
    assert answer.status_code in (200, 303), answer.text[:500]
    assert await csrf_site.state(session) != before


async def test_a_token_from_another_signed_in_session_is_refused(csrf_site: Site) -> None:
    owner, guest = await csrf_site.open_session("ada"), await csrf_site.open_session("gus")
    before = await csrf_site.state(owner)
    answer = await owner.http.post(
        "/groups/acme/-/dependency_proxy/clear_cache", data={"authenticity_token": guest.token}
    )
    assert answer.status_code == 403 and CSRF_MESSAGE in answer.text
    assert await csrf_site.state(owner) == before


# --- GraphQL: the session counts for a mutation only with the X-CSRF-Token header ---

MUTATIONS: dict[str, str] = {
    "updateDependencyProxySettings": 'updateDependencyProxySettings(input: {groupPath: "acme", '
    "enabled: false}) { errors }",
    "updateDependencyProxyImageTtlGroupPolicy": "updateDependencyProxyImageTtlGroupPolicy("
    'input: {groupPath: "acme", enabled: true, ttl: 7}) { errors }',
    "clearDependencyProxyCache": 'clearDependencyProxyCache(input: {groupPath: "acme"}) { errors }',
    "destroyDependencyProxyManifest": "destroyDependencyProxyManifest(input: "
    '{id: "gid://dockyard/DependencyProxy::Manifest/1"}) { errors }',
    "updateDependencyProxyManifest": "updateDependencyProxyManifest(input: "
    '{id: "gid://dockyard/DependencyProxy::Manifest/1", pinned: true}) { errors }',
    "createDependencyProxyWarmJob": 'createDependencyProxyWarmJob(input: {groupPath: "acme", '
    'images: ["alpine:3.19"]}) { errors }',
    "groupCreate": 'groupCreate(input: {path: "acme/new"}) { errors }',
    "groupMemberAdd": 'groupMemberAdd(input: {groupPath: "acme", username: "vic", '
    "accessLevel: DEVELOPER}) { errors }",
    "groupMemberUpdate": 'groupMemberUpdate(input: {groupPath: "acme", username: "gus", '
    "accessLevel: REPORTER}) { errors }",
    "groupMemberRemove": 'groupMemberRemove(input: {groupPath: "acme", username: "gus"}) '
    "{ errors }",
    "dependencyProxyUpstreamCreate": 'dependencyProxyUpstreamCreate(input: {groupPath: "acme", '
    'url: "https://ghcr.io"}) { errors }',
    "dependencyProxyUpstreamDelete": 'dependencyProxyUpstreamDelete(input: {groupPath: "acme", '
    'name: "quay"}) { errors }',
    "personalAccessTokenRotate": "personalAccessTokenRotate(input: "
    '{id: "gid://dockyard/PersonalAccessToken/1"}) { errors }',
    "groupAccessTokenCreate": 'groupAccessTokenCreate(input: {groupPath: "acme", name: "bot", '
    'accessLevel: GUEST, scopes: ["read_api"]}) { errors }',
    "groupAccessTokenRevoke": 'groupAccessTokenRevoke(input: {groupPath: "acme", '
    'name: "old-bot"}) { errors }',
}


def test_every_mutation_is_in_the_table() -> None:
    mutation_type = schema._schema.mutation_type
    assert mutation_type is not None
    assert set(mutation_type.fields) == set(MUTATIONS), "add the new mutation to MUTATIONS"


@pytest.mark.parametrize("name", list(MUTATIONS))
async def test_a_mutation_with_the_session_but_without_the_header_does_nothing(
    csrf_site: Site, name: str
) -> None:
    session, other = await csrf_site.open_session("ada"), await csrf_site.open_session(None)
    query = f"mutation {{ {MUTATIONS[name]} }}"
    before = await csrf_site.state(session)
    for headers in ({}, {"X-CSRF-Token": other.token}, {"X-CSRF-Token": ""}):
        answer = await session.http.post("/api/graphql", json={"query": query}, headers=headers)
        assert answer.status_code == 200
        # As an anonymous caller: refused, GitLab's wording, nothing done.
        assert answer.json()["data"][name] is None
        assert "permission" in answer.json()["errors"][0]["message"]
        assert await csrf_site.state(session) == before
    # A GET carries no header at all: mutations are never run from a query string.
    answer = await session.http.get("/api/graphql", params={"query": query})
    assert answer.status_code == 400 and "mutations are not allowed" in answer.text
    assert await csrf_site.state(session) == before

    answer = await session.http.post(
        "/api/graphql", json={"query": query}, headers={"X-CSRF-Token": session.token}
    )
    assert answer.json()["data"][name]["errors"] == []
    assert await csrf_site.state(session) != before


async def test_the_rest_purge_ignores_the_session_cookie(csrf_site: Site) -> None:
    session = await csrf_site.open_session("ada")
    before = await csrf_site.state(session)
    answer = await session.http.delete("/api/v4/groups/acme/dependency_proxy/cache")
    assert answer.status_code == 401
    assert await csrf_site.state(session) == before
