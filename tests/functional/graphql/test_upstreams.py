"""Group upstreams through GraphQL: Owners list, add and remove; the password is never
readable; others get GitLab's unauthorised answer; rule breaks are payload errors."""

from __future__ import annotations

from app.dependency_proxy import credentials
from app.dependency_proxy.models import Upstream
from app.groups import records as groups
from tests.conftest import TEST_SECRET
from tests.functional.graphql.conftest import World, operation

LIST = operation("getDependencyProxyUpstreams")
CREATE = operation("dependencyProxyUpstreamCreate")
DELETE = operation("dependencyProxyUpstreamDelete")


def create_input(**values: object) -> dict[str, object]:
    return {"input": {"groupPath": "acme", **values}}


async def test_owner_adds_lists_and_removes_and_the_password_never_comes_back(
    world: World,
) -> None:
    listed = await world.data(LIST, {"fullPath": "acme"}, as_user="owner")
    assert [item["name"] for item in listed["group"]["dependencyProxyUpstreams"]] == ["docker-hub"]

    variables = create_input(
        url="https://quay.io",
        name="quay",
        username="robot",
        password="quay-secret",
        position=1,
        cacheValidityHours=6,
    )
    body = await world.gql(CREATE, variables, as_user="owner")
    assert "quay-secret" not in str(body)
    payload = body["data"]["dependencyProxyUpstreamCreate"]
    assert payload["errors"] == []
    assert payload["upstream"] == {
        "name": "quay",
        "url": "https://quay.io",
        "position": 1,
        "username": "robot",
        "hasCredentials": True,
        "cacheValidityHours": 6,
    }
    row = await Upstream.get(group_id=world.acme.id, name="quay")
    assert "quay-secret" not in (row.secret_encrypted or "")
    assert credentials.decrypt(TEST_SECRET, row.secret_encrypted or "") == "quay-secret"

    listed = await world.data(LIST, {"fullPath": "acme"}, as_user="owner")
    upstreams = listed["group"]["dependencyProxyUpstreams"]
    assert [(item["name"], item["position"]) for item in upstreams] == [
        ("quay", 1),
        ("docker-hub", 2),
    ]
    assert all(item["inheritedFrom"] is None for item in upstreams)

    # A subgroup sees the list it inherits, and where it comes from.
    await groups.create_group("acme/sub")
    sub = await world.data(LIST, {"fullPath": "acme/sub"}, as_user="owner")
    assert {item["inheritedFrom"] for item in sub["group"]["dependencyProxyUpstreams"]} == {"Acme"}

    removed = await world.data(DELETE, {"groupPath": "acme", "name": "quay"}, as_user="owner")
    assert removed["dependencyProxyUpstreamDelete"]["errors"] == []
    assert not await Upstream.filter(group_id=world.acme.id, name="quay").exists()


async def test_rule_breaks_are_payload_errors(world: World) -> None:
    cases = [
        (create_input(url="https://quay.io/v2"), "no path"),
        (create_input(url="quay.io"), "http(s)://host"),
        (create_input(url="https://quay.io", username="only"), "together"),
        (create_input(url="https://quay.io", cacheValidityHours=-1), "cache validity"),
        (create_input(url="https://registry-1.docker.io"), "already has an upstream"),
    ]
    for variables, message in cases:
        payload = (await world.data(CREATE, variables, as_user="owner"))[
            "dependencyProxyUpstreamCreate"
        ]
        assert payload["upstream"] is None
        assert len(payload["errors"]) == 1 and message in payload["errors"][0], payload
    deleted = await world.data(DELETE, {"groupPath": "acme", "name": "nope"}, as_user="owner")
    assert "has the default upstream" in deleted["dependencyProxyUpstreamDelete"]["errors"][0]


async def test_guests_strangers_and_read_api_tokens_neither_see_nor_change(world: World) -> None:
    guest = await world.data(LIST, {"fullPath": "acme"}, as_user="guest")
    assert guest["group"]["dependencyProxyUpstreams"] is None
    for user in ("guest", "stranger", "owner_read_api"):
        body = await world.gql(CREATE, create_input(url="https://evil.example"), as_user=user)
        assert body["data"]["dependencyProxyUpstreamCreate"] is None
        assert body["errors"], body
    assert not await Upstream.filter(group_id=world.acme.id).exists()
