"""Inside a group's revalidation window a cached tag is served as it is; after it, or
once the row leaves the cache, the upstream is asked again.

No upstream answers in these tests (the settings point nowhere reachable), so a
request that asks it serves the cached row marked STALE, or fails: a HIT proves
nobody asked.
"""

from __future__ import annotations

import base64
from datetime import timedelta

import httpx
import pytest

from app import clock
from app.accounts import records as accounts
from app.dependency_proxy.group_settings import setting_for
from app.dependency_proxy.models import CacheStatus, Manifest
from app.groups import records as groups
from app.groups.models import AccessLevel
from tests.support.cache_rows import add_manifest

REPO = "acme/dependency_proxy/containers/library/alpine"


@pytest.fixture
async def bearer(client: httpx.AsyncClient) -> dict[str, str]:
    acme = await groups.create_group("acme")
    alice = await accounts.create_user("alice", "alice@example.com", "alice-password")
    await groups.add_member(acme, alice, AccessLevel.GUEST)
    await add_manifest(acme, "library/alpine", "3.20")
    setting = await setting_for(acme)
    setting.revalidation_interval = 60
    await setting.save()
    basic = base64.b64encode(b"alice:alice-password").decode()
    answer = await client.get(
        "/jwt/auth",
        params={"service": "dependency_proxy", "scope": f"repository:{REPO}:pull"},
        headers={"Authorization": f"Basic {basic}"},
    )
    return {"Authorization": f"Bearer {answer.json()['token']}"}


async def test_inside_the_window_the_tag_is_served_without_asking(
    client: httpx.AsyncClient, bearer: dict[str, str]
) -> None:
    answer = await client.get(f"/v2/{REPO}/manifests/3.20", headers=bearer)
    assert answer.status_code == 200 and answer.headers["X-Cache"] == "HIT"
    assert answer.content == b"{}"
    row = await Manifest.get(reference="3.20")
    assert answer.headers["Docker-Content-Digest"] == row.digest


async def test_after_the_window_the_upstream_is_asked_again(
    client: httpx.AsyncClient, bearer: dict[str, str]
) -> None:
    later = clock.now() + timedelta(seconds=61)
    clock.set_clock(lambda: later)
    answer = await client.get(f"/v2/{REPO}/manifests/3.20", headers=bearer)
    assert answer.status_code == 200 and answer.headers["X-Cache"] == "STALE"


async def test_a_row_leaving_the_cache_is_not_served_from_the_window(
    client: httpx.AsyncClient, bearer: dict[str, str]
) -> None:
    await Manifest.filter(reference="3.20").update(status=CacheStatus.PENDING_DESTRUCTION)
    answer = await client.get(f"/v2/{REPO}/manifests/3.20", headers=bearer)
    assert answer.status_code != 200
