"""`Group.dependencyProxyUsage`: per hour and per day, the group's own rows only, for
whoever may read the group; a bad range is a field error, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app import clock
from app.dependency_proxy.usage import UsageAccumulator, observe_upstream_response, on_behalf_of
from app.groups.models import Group
from tests.functional.graphql.conftest import World, operation

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)

USAGE = operation("getDependencyProxyUsage")


async def record(group: Group, at: datetime, *, hits: int, misses: int, remaining: int) -> None:
    usage = UsageAccumulator()
    clock.set_clock(lambda: at)
    for number in range(hits + misses):
        usage.record_pull(group.id, "alpine", hit=number < hits, docker_hub=True)
        usage.record_bytes(group.id, "cache" if number < hits else "upstream", 1000)
    with on_behalf_of(usage, group.id):
        observe_upstream_response(remaining)
    await usage.flush()
    clock.set_clock(lambda: NOW)


@pytest.fixture
async def recorded(world: World) -> World:
    await record(world.acme, NOW - timedelta(hours=2), hits=3, misses=1, remaining=80)
    await record(world.acme, NOW - timedelta(days=3), hits=1, misses=1, remaining=50)
    await record(world.other, NOW - timedelta(hours=2), hits=50, misses=50, remaining=1)
    return world


@pytest.mark.parametrize("as_user", ["owner", "guest", "admin"])
async def test_readers_get_the_groups_hours(recorded: World, as_user: str) -> None:
    data = await recorded.data(USAGE, {"fullPath": "acme", "period": "HOURLY"}, as_user=as_user)

    usage = data["group"]["dependencyProxyUsage"]
    assert usage["period"] == "HOURLY" and len(usage["nodes"]) == 24
    assert usage["startsAt"] == "2026-11-19T13:00:00Z" and usage["endsAt"] == "2026-11-20T13:00:00Z"
    busy = [node for node in usage["nodes"] if node["pulls"]]
    assert busy == [
        {
            "startsAt": "2026-11-20T10:00:00Z",
            "pulls": 4,
            "hits": 3,
            "misses": 1,
            "bytesFromCache": "3000",
            "bytesFromUpstream": "1000",
            "upstreamRequests": 1,
            "rateLimitRemaining": 80,
        }
    ]
    assert (usage["bytesSaved"], usage["dockerHubPullsSaved"]) == ("3000", 3)


async def test_days_and_an_explicit_range(recorded: World) -> None:
    daily = await recorded.data(USAGE, {"fullPath": "acme", "period": "DAILY"}, as_user="guest")
    nodes = daily["group"]["dependencyProxyUsage"]["nodes"]
    assert len(nodes) == 30 and nodes[-1]["startsAt"] == "2026-11-20T00:00:00Z"
    assert [(node["startsAt"][:10], node["pulls"]) for node in nodes if node["pulls"]] == [
        ("2026-11-17", 2),
        ("2026-11-20", 4),
    ]
    assert [node["rateLimitRemaining"] for node in nodes if node["pulls"]] == [50, 80]

    variables = {
        "fullPath": "acme",
        "period": "DAILY",
        "from": "2026-11-16T08:00:00Z",
        "to": "2026-11-18T00:00:00Z",  # exclusive
    }
    ranged = await recorded.data(USAGE, variables, as_user="owner")
    usage = ranged["group"]["dependencyProxyUsage"]
    assert [node["startsAt"][:10] for node in usage["nodes"]] == ["2026-11-16", "2026-11-17"]
    assert (usage["bytesSaved"], usage["dockerHubPullsSaved"]) == ("1000", 1)


@pytest.mark.parametrize("as_user", ["stranger", None])
async def test_no_one_else_sees_a_groups_usage(recorded: World, as_user: str | None) -> None:
    body = await recorded.gql(USAGE, {"fullPath": "acme", "period": "HOURLY"}, as_user=as_user)
    assert body["data"]["group"] is None
    # The stranger owns `other`: its own usage, never acme's.
    if as_user == "stranger":
        own = await recorded.data(USAGE, {"fullPath": "other", "period": "HOURLY"}, as_user=as_user)
        pulls = [node["pulls"] for node in own["group"]["dependencyProxyUsage"]["nodes"]]
        assert sum(pulls) == 100


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"from": "2026-11-20T00:00:00Z", "to": "2026-11-19T00:00:00Z"}, "`from` must be before"),
        ({"from": "2026-09-01T00:00:00Z"}, "at most 744 hours"),
    ],
)
async def test_a_bad_range_is_a_field_error(
    recorded: World, variables: dict[str, str], message: str
) -> None:
    query = {"fullPath": "acme", "period": "HOURLY", **variables}
    body = await recorded.gql(USAGE, query, as_user="owner")
    assert message in body["errors"][0]["message"]
    assert body["data"]["group"]["dependencyProxyUsage"] is None
