"""Clearing a large cache goes chunk by chunk: the page and GraphQL show how far it got,
pulls made meanwhile survive, and a clear whose process died is finished by cleanup."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app import clock
from app.accounts import records as accounts
from app.accounts.models import User
from app.accounts.principal import Principal
from app.dependency_proxy import clearing
from app.dependency_proxy.cleanup import run_cleanup_once
from app.dependency_proxy.models import Blob, CacheClear, CacheStatus, ClearState, Manifest
from app.dependency_proxy.services.clear_cache import clear_cache
from app.groups.models import Group
from tests.functional.graphql.conftest import operation
from tests.functional.web.conftest import Browser
from tests.support.cache_rows import add_blob, add_manifest

PAGE = "/groups/acme/-/dependency_proxy"
PROGRESS = operation("getDependencyProxyCacheClear")
CHUNK = 4


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clearing, "CHUNK_ROWS", CHUNK)
    monkeypatch.setattr(clearing, "PAUSE_SECONDS", 0)


class HeldBack:
    """Stands in for the runtime's `background`: keeps the work until the test runs it."""

    def __init__(self) -> None:
        self.work: list[Coroutine[Any, Any, None]] = []

    def __call__(self, work: Awaitable[None], name: str) -> None:
        assert "acme" in name
        self.work.append(work)  # type: ignore[arg-type]

    async def run(self) -> None:
        for work in self.work:
            await work
        self.work.clear()

    def drop(self) -> None:
        for work in self.work:
            work.close()  # the process died before it could go on
        self.work.clear()


@pytest.fixture
def held(app: Starlette, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> HeldBack:
    held = HeldBack()
    monkeypatch.setattr(app.state.runtime, "background", held)
    return held


async def fill(group: Group, manifests: int = 10, blobs: int = 10) -> None:
    for number in range(manifests):
        await add_manifest(group, "library/alpine", f"v{number}")
    for number in range(blobs):
        await add_blob(group, f"layer {number}")


async def progress(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await client.post(
        "/api/graphql",
        json={"query": PROGRESS, "variables": {"fullPath": "acme"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.json()["data"]["group"]["dependencyProxyCacheClear"]  # type: ignore[no-any-return]


async def guest_token(guest: User) -> str:
    return (await accounts.create_personal_access_token(guest, "read", "read_api")).secret


async def test_a_large_clear_shows_its_progress_on_the_page_and_in_graphql(
    as_owner: Browser,
    group: Group,
    guest: User,
    client: httpx.AsyncClient,
    held: HeldBack,
) -> None:
    await fill(group)
    token = await guest_token(guest)
    assert await progress(client, token) is None  # never cleared

    response = await as_owner.post(PAGE + "/clear_cache", {}, page=PAGE)
    assert response.status_code == 303
    page = await as_owner.get(PAGE)
    # The page answered after two chunks of four; the rest waits in the background.
    assert "Clearing the cache: its items are being scheduled for removal." in page.text
    assert "Clearing…</strong> 8 of 20 marked for deletion." in page.text
    assert 'data-refresh-seconds="2"' in page.text
    assert await Manifest.filter(status=CacheStatus.PENDING_DESTRUCTION).count() == 8
    running = await progress(client, token)
    assert running["status"] == "RUNNING" and running["finishedAt"] is None
    assert (running["markedCount"], running["totalCount"]) == (8, 20)

    await held.run()
    finished = await progress(client, token)
    assert finished["status"] == "FINISHED" and finished["finishedAt"] is not None
    assert (finished["manifestsMarked"], finished["blobsMarked"]) == (10, 10)
    assert await Manifest.filter(status=CacheStatus.DEFAULT).count() == 0
    assert await Blob.filter(status=CacheStatus.DEFAULT).count() == 0
    page = await as_owner.get(PAGE)
    assert "Clearing…" not in page.text and "data-refresh-seconds" not in page.text
    assert "20 item(s) are scheduled for deletion" in page.text


async def test_a_small_clear_is_done_before_the_page_answers(
    as_owner: Browser, group: Group, held: HeldBack
) -> None:
    await fill(group, manifests=3, blobs=4)
    await as_owner.post(PAGE + "/clear_cache", {}, page=PAGE)
    assert held.work == []
    page = await as_owner.get(PAGE)
    assert "All items in the cache are scheduled for removal." in page.text
    assert "Clearing…" not in page.text
    assert page.text.count("Scheduled for deletion") == 3


async def test_pulls_made_while_a_clear_runs_are_kept(
    as_owner: Browser, group: Group, held: HeldBack
) -> None:
    await fill(group)
    await as_owner.post(PAGE + "/clear_cache", {}, page=PAGE)
    fresh_manifest = await add_manifest(group, "library/alpine", "pulled-meanwhile")
    fresh_blob = await add_blob(group, "pulled meanwhile")
    await held.run()
    assert (await Manifest.get(id=fresh_manifest.id)).status == CacheStatus.DEFAULT
    assert (await Blob.get(id=fresh_blob.id)).status == CacheStatus.DEFAULT
    assert await Manifest.filter(status=CacheStatus.PENDING_DESTRUCTION).count() == 10


async def test_a_second_clear_joins_the_running_one_and_takes_the_new_rows(
    as_owner: Browser, group: Group, owner: User, held: HeldBack
) -> None:
    await fill(group)
    await as_owner.post(PAGE + "/clear_cache", {}, page=PAGE)
    newer = await add_manifest(group, "library/alpine", "newer")
    # A script's mutation waits for the clear the page started, widened to today's rows.
    second, _ = await asyncio.gather(clear_cache(Principal(user=owner), group), held.run())
    assert second.finished and (second.manifests_marked, second.blobs_marked) == (11, 10)
    assert (await Manifest.get(id=newer.id)).status == CacheStatus.PENDING_DESTRUCTION
    assert await CacheClear.filter(group_id=group.id).count() == 1


async def test_a_clear_whose_process_died_is_finished_by_the_cleanup_worker(
    app: Starlette, as_owner: Browser, group: Group, held: HeldBack
) -> None:
    await fill(group)
    await as_owner.post(PAGE + "/clear_cache", {}, page=PAGE)
    held.drop()
    assert (await CacheClear.get(group_id=group.id)).state == ClearState.RUNNING
    now = clock.now()
    clock.set_clock(lambda: now + clearing.LEASE + timedelta(seconds=1))
    result = await run_cleanup_once(app.state.cache)
    assert (await CacheClear.get(group_id=group.id)).state == ClearState.FINISHED
    assert (result.manifests_deleted, result.blobs_deleted) == (10, 10)


async def test_the_graphql_mutation_waits_for_every_chunk(
    client: httpx.AsyncClient, group: Group, owner: User
) -> None:
    await fill(group)
    token = (await accounts.create_personal_access_token(owner, "api", "api")).secret
    response = await client.post(
        "/api/graphql",
        json={
            "query": operation("clearDependencyProxyCache"),
            "variables": {"groupPath": "acme"},
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    payload = response.json()["data"]["clearDependencyProxyCache"]
    assert (payload["manifestsMarked"], payload["blobsMarked"], payload["errors"]) == (10, 10, [])
    assert await Blob.filter(status=CacheStatus.DEFAULT).count() == 0
