"""Usage over time on the pages: the Dependency Proxy page's charts show the group's own
usage to whoever may read it and nobody else's; `/admin/usage` is for administrators."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from app import clock
from app.accounts.models import User
from app.dependency_proxy.models import Manifest
from app.dependency_proxy.usage import UsageAccumulator, observe_upstream_response, on_behalf_of
from app.groups.models import AccessLevel, Group
from app.instance.models import InstanceSetting
from tests.functional.web.conftest import Browser, MakeBrowser, make_group, make_user
from tests.support.cache_rows import add_blob, add_manifest

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)


async def record_usage(group: Group, *, hits: int, misses: int, from_cache: int) -> None:
    """What pulls an hour ago counted, flushed as the server's periodic flush does."""
    usage = UsageAccumulator()
    clock.set_clock(lambda: NOW - timedelta(hours=1))
    for number in range(hits + misses):
        usage.record_pull(group.id, "alpine", hit=number < hits, docker_hub=True)
    usage.record_bytes(group.id, "cache", from_cache)
    usage.record_bytes(group.id, "upstream", 1000)
    with on_behalf_of(usage, group.id):
        observe_upstream_response(77)
    await usage.flush()
    clock.set_clock(lambda: NOW)


async def test_a_reader_sees_the_groups_usage_charts_and_totals(
    as_guest: Browser, group: Group
) -> None:
    other = await make_group("other", {})
    await record_usage(group, hits=3, misses=2, from_cache=5 * 1024 * 1024)
    await record_usage(other, hits=40, misses=9, from_cache=999 * 1024 * 1024)

    page = await as_guest.get("/groups/acme/-/dependency_proxy")

    assert page.status_code == 200
    html = page.text
    assert 'id="usage-hourly"' in html and 'id="usage-daily"' in html
    assert "<svg" in html and 'class="hits"' in html and 'class="misses"' in html
    assert "2026-11-20 11:00 UTC: 5 pulls (3 hits, 2 misses), 5.00 MiB from cache" in html
    assert "rate limit left 77" in html
    assert 'id="bytes-saved">5.00 MiB<' in html
    assert 'id="docker-hub-pulls-saved">3<' in html
    assert "49 pulls" not in html and "999.00 MiB" not in html  # other's usage


async def test_a_member_of_another_group_sees_nothing(
    make_browser: MakeBrowser, group: Group, client: httpx.AsyncClient
) -> None:
    outsider = await make_user("oscar")
    await make_group("other", {outsider: AccessLevel.OWNER})
    await record_usage(group, hits=3, misses=2, from_cache=100)
    browser = await make_browser()
    await browser.sign_in("oscar")

    page = await browser.get("/groups/acme/-/dependency_proxy")

    assert page.status_code == 404
    assert "usage-hourly" not in page.text and "5 pulls" not in page.text


async def test_admin_sees_sizes_top_images_and_disk(
    make_browser: MakeBrowser, group: Group, owner: User
) -> None:
    await make_user("ada", admin=True)
    other = await make_group("other", {})
    big = await add_manifest(other, "postgres", "16")
    await Manifest.filter(id=big.id).update(image_size=150 * 1024 * 1024)
    await add_blob(other, "layer", size=150 * 1024 * 1024)
    small = await add_manifest(group, "alpine", "3.19")
    await Manifest.filter(id=small.id).update(image_size=3 * 1024 * 1024)
    await record_usage(group, hits=3, misses=2, from_cache=100)
    admin = await make_browser()
    await admin.sign_in("ada")

    page = await admin.get("/admin/usage")

    assert page.status_code == 200
    html = page.text
    assert html.index(">other</a>") < html.index(">acme</a>")  # largest first
    pulls = html[html.index('id="images-by-pulls"') : html.index('id="images-by-size"')]
    assert "alpine" in pulls and '<td class="num">5</td><td class="num">3</td>' in pulls
    largest = html[html.index('id="images-by-size"') :]
    assert largest.index("postgres:16") < largest.index("alpine:3.19")
    assert "150.00 MiB" in largest
    assert 'id="disk-free"' in html
    assert "No instance disk budget is set" in html

    await InstanceSetting.filter().update(disk_budget_bytes=600 * 1024 * 1024)
    budgeted = (await admin.get("/admin/usage")).text
    budget = budgeted[budgeted.index('id="disk-budget"') :]
    # 150 MiB + 3 MiB of manifests and 150 MiB of blobs against 600 MiB.
    assert budget.startswith('id="disk-budget">Instance disk budget: <strong>600.00 MiB</strong>')


async def test_only_admins_reach_the_instance_usage(
    as_owner: Browser, make_browser: MakeBrowser
) -> None:
    refused = await as_owner.get("/admin/usage")
    assert refused.status_code == 403
    assert "administrators only" in refused.text and "disk-free" not in refused.text
    anonymous = await (await make_browser()).get("/admin/usage")
    assert anonymous.status_code == 303 and "/users/sign_in" in anonymous.headers["location"]
