"""Cost per request follows the page, not the table: the pages, GitLab's example query,
the admin area, clearing and cleanup run a fixed number of statements, and SQLite runs
none of them by reading a whole cache table or sorting a group's rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app import clock
from app.accounts import records as accounts
from app.accounts.principal import Principal
from app.dependency_proxy import cleanup, clearing
from app.dependency_proxy.cleanup import run_cleanup_once
from app.dependency_proxy.models import Blob, CacheStatus, ImageTtlGroupPolicy, Manifest
from app.dependency_proxy.services.clear_cache import clear_cache
from app.groups import records as groups
from app.groups.models import AccessLevel, Group
from tests.functional.graphql.conftest import operation
from tests.functional.web.conftest import PASSWORD, Browser
from tests.support.cache_rows import digest_of
from tests.support.statements import (
    Statement,
    capture_statements,
    sqlite_plan,
    whole_table_steps,
)

DETAILS = operation("getDependencyProxyDetails")
BLOBS = operation("getDependencyProxyBlobs")
PAGE = "/groups/acme/-/dependency_proxy"


async def add_rows(group: Group, manifests: int, blobs: int) -> None:
    """More rows for the group: new tags and new blobs (one live row per tag and digest)."""
    now = clock.now()
    first_manifest = await Manifest.filter(group_id=group.id).count()
    first_blob = await Blob.filter(group_id=group.id).count()
    await Manifest.bulk_create(
        [
            Manifest(
                group_id=group.id,
                file_name=f"image{index}:latest.json",
                image_name=f"image{index}",
                reference="latest",
                digest=digest_of(f"{group.id} manifest {index}"),
                content_type="application/vnd.oci.image.manifest.v1+json",
                size=500,
                image_size=5000,
                content=b"{}",
                read_at=now,
                checked_at=now,
            )
            for index in range(first_manifest, first_manifest + manifests)
        ]
    )
    await Blob.bulk_create(
        [
            Blob(group_id=group.id, digest=digest_of(f"blob {index}"), size=1000, read_at=now)
            for index in range(first_blob, first_blob + blobs)
        ]
    )


class Surfaces:
    """The requests under test, as a user makes them."""

    def __init__(
        self, client: httpx.AsyncClient, owner: Browser, admin: Browser, token: str
    ) -> None:
        self.client = client
        self.owner = owner  # an Owner of acme, not an admin: policy checks run in full
        self.admin = admin
        self.token = token  # the Owner's

    async def gql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(
            "/api/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]  # type: ignore[no-any-return]

    async def page(self, url: str = PAGE, *, as_admin: bool = False) -> str:
        response = await (self.admin if as_admin else self.owner).get(url)
        assert response.status_code == 200
        return response.text


@pytest.fixture
async def surfaces(app: Starlette, client: httpx.AsyncClient) -> AsyncIterator[Surfaces]:
    acme = await groups.create_group("acme")
    await groups.create_group("acme/ci")
    await accounts.create_user("ada", "ada@example.com", PASSWORD, is_admin=True)
    olga = await accounts.create_user("olga", "olga@example.com", PASSWORD)
    await groups.add_member(acme, olga, AccessLevel.OWNER)
    token = (await accounts.create_personal_access_token(olga, "api", "api")).secret

    def browser() -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://dockyard.test"
        )

    async with browser() as owner_http, browser() as admin_http:
        owner, admin = Browser(owner_http), Browser(admin_http)
        assert (await owner.sign_in("olga")).status_code == 303
        assert (await admin.sign_in("ada")).status_code == 303
        surfaces = Surfaces(client, owner, admin, token)
        await requests(surfaces)  # first visits create the lazily made rows
        yield surfaces


async def requests(surfaces: Surfaces) -> dict[str, list[Statement]]:
    """Each request once, with the statements it sent."""
    import _pytest.monkeypatch

    sent: dict[str, list[Statement]] = {}
    patch = _pytest.monkeypatch.MonkeyPatch()
    try:
        statements = capture_statements(patch)

        async def measure(name: str, request: Any) -> Any:
            statements.clear()
            result = await request
            sent[name] = list(statements)
            return result

        first = await measure("page 1", surfaces.page())
        after = first.split('rel="next" href="')[-1].split('"')[0] if 'rel="next"' in first else ""
        await measure("page 2", surfaces.page(after or PAGE))
        data = await measure("GraphQL details", surfaces.gql(DETAILS, {"fullPath": "acme"}))
        cursor = data["group"]["dependencyProxyManifests"]["pageInfo"]["endCursor"]
        await measure(
            "GraphQL details page 2", surfaces.gql(DETAILS, {"fullPath": "acme", "after": cursor})
        )
        await measure("GraphQL blobs", surfaces.gql(BLOBS, {"fullPath": "acme", "first": 20}))
        await measure("admin", surfaces.page("/admin", as_admin=True))
    finally:
        patch.undo()
    return sent


async def test_requests_cost_the_same_for_a_small_and_a_large_cache(surfaces: Surfaces) -> None:
    acme = await groups.get_group("acme")
    await add_rows(acme, manifests=25, blobs=30)  # two pages of 20
    small = await requests(surfaces)
    await add_rows(acme, manifests=200, blobs=400)
    await add_rows(await groups.get_group("acme/ci"), manifests=50, blobs=50)
    large = await requests(surfaces)
    for name, statements in large.items():
        assert len(statements) == len(small[name]), (name, [s.sql for s in statements])
    # Authentication, policy, settings, totals, one page and its neighbour check, the
    # usage charts (hours, days) and the warm jobs. Each service checks the policy
    # itself, so the page reads the principal's membership once per service (7 of
    # the 22): a per-request memo of the level would save those.
    assert len(large["page 1"]) <= 22, [s.sql for s in large["page 1"]]
    assert len(large["GraphQL details"]) <= 20, [s.sql for s in large["GraphQL details"]]
    assert len(large["admin"]) <= 12, [s.sql for s in large["admin"]]


async def assert_no_whole_table_reads(statements: list[Statement]) -> int:
    checked = 0
    for statement in statements:
        if not statement.touches_cache_rows or statement.sql.lstrip().upper().startswith("INSERT"):
            continue
        plan = await sqlite_plan(statement)
        assert not whole_table_steps(plan), (statement.sql, plan)
        # An aggregate reads every row it counts: a group's totals come from counters.
        assert not any(word in statement.sql.upper() for word in ("COUNT(", "SUM(")), statement
        checked += 1
    return checked


async def test_pages_queries_and_admin_read_no_whole_table(surfaces: Surfaces) -> None:
    acme = await groups.get_group("acme")
    await add_rows(acme, manifests=60, blobs=120)
    for name, statements in (await requests(surfaces)).items():
        if name != "admin":  # the admin area reads the totals table only
            assert await assert_no_whole_table_reads(statements) > 0, name
        else:
            assert not any(statement.touches_cache_rows for statement in statements)


async def test_clearing_and_cleanup_read_no_whole_table(
    app: Starlette, surfaces: Surfaces, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clearing, "CHUNK_ROWS", 25)
    monkeypatch.setattr(cleanup, "BATCH_SIZE", 25)
    acme = await groups.get_group("acme")
    other = await groups.get_group("acme/ci")
    await add_rows(acme, manifests=60, blobs=120)
    await add_rows(other, manifests=60, blobs=120)
    await ImageTtlGroupPolicy.create(group_id=other.id, enabled=True, ttl=1)
    owner = Principal(user=await accounts.get_user("olga"))
    statements = capture_statements(monkeypatch)

    await clear_cache(owner, acme)
    assert await assert_no_whole_table_reads(list(statements)) >= 10
    assert await Manifest.filter(group_id=acme.id, status=CacheStatus.DEFAULT).count() == 0

    statements.clear()
    now = clock.now()
    clock.set_clock(lambda: now + timedelta(days=2))  # acme/ci's rows expire
    result = await run_cleanup_once(app.state.cache)
    assert (result.manifests_expired, result.blobs_expired) == (60, 120)
    assert (result.manifests_deleted, result.blobs_deleted) == (120, 240)
    assert await assert_no_whole_table_reads(list(statements)) >= 20
