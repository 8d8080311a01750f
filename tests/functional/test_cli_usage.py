"""`dockyard cache usage`: a group's pulls, hits, misses and bytes per hour or day,
as flushed by the servers, and nothing of another group's."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from app import clock
from app.config import Settings
from app.dependency_proxy.usage import UsageAccumulator
from app.groups import records as groups
from tests.functional.test_cache_images import dockyard


async def flushed(group_id: int, at: datetime, *, hits: int, misses: int, cached: int) -> None:
    """What a server counted at `at` and wrote at its periodic flush."""
    usage = UsageAccumulator()
    clock.set_clock(lambda: at)
    try:
        for number in range(hits + misses):
            usage.record_pull(group_id, "alpine", hit=number < hits, docker_hub=True)
        usage.record_bytes(group_id, "cache", cached)
        usage.record_bytes(group_id, "upstream", 2048)
        await usage.flush()
    finally:
        clock.set_clock(None)


async def test_cli_prints_the_groups_usage_per_hour_and_per_day(database: Settings) -> None:
    acme = await groups.create_group("acme")
    other = await groups.create_group("other")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    await flushed(acme.id, an_hour_ago, hits=3, misses=1, cached=5 * 1024 * 1024)
    await flushed(other.id, an_hour_ago, hits=50, misses=50, cached=1)
    await flushed(acme.id, an_hour_ago - timedelta(days=3), hits=7, misses=0, cached=1024)

    hours = json.loads((await dockyard(database, "cache", "usage", "acme", "--json")).stdout)
    assert hours["group"] == "acme" and hours["period"] == "hour" and len(hours["points"]) == 24
    busy = [point for point in hours["points"] if point["pulls"]]
    assert [(p["pulls"], p["hits"], p["misses"]) for p in busy] == [(4, 3, 1)]
    assert busy[0]["bytes_from_cache"] == 5 * 1024 * 1024
    assert busy[0]["bytes_from_upstream"] == 2048
    assert hours["bytes_saved"] == 5 * 1024 * 1024 and hours["docker_hub_pulls_saved"] == 3

    days = json.loads(
        (await dockyard(database, "cache", "usage", "acme", "--daily", "--json")).stdout
    )
    assert len(days["points"]) == 30
    assert sorted(p["pulls"] for p in days["points"] if p["pulls"]) == [4, 7]
    assert days["docker_hub_pulls_saved"] == 10

    text = (await dockyard(database, "cache", "usage", "acme")).stdout.splitlines()
    assert text[0] == (
        "acme: 4 pulls, 5.00 MiB saved, 3 Docker Hub pulls saved (last 24 hours, UTC)"
    )
    assert text[1].split() == [
        "period", "pulls", "hits", "misses", "from", "cache", "from", "upstream",
        "upstream", "headroom",
    ]  # fmt: skip
    assert len(text) == 3 and text[2].split()[2:5] == ["4", "3", "1"]

    missing = await dockyard(database, "cache", "usage", "nope", ok=False)
    assert "nope" in missing.stderr and "not found" in missing.stderr
