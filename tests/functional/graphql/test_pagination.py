"""Relay connections: both directions, the page-size cap, and no N+1 queries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tortoise import connections

from app.dependency_proxy.models import Manifest
from tests.functional.graphql.conftest import World, operation
from tests.support.cache_rows import add_manifest

DETAILS = operation("getDependencyProxyDetails")


def image_names(data: dict[str, Any]) -> list[str]:
    return [node["imageName"] for node in data["group"]["dependencyProxyManifests"]["nodes"]]


def page_info(data: dict[str, Any]) -> dict[str, Any]:
    return data["group"]["dependencyProxyManifests"]["pageInfo"]  # type: ignore[no-any-return]


async def test_pages_forward_and_backward_newest_first(world: World) -> None:
    for index in range(5):
        await add_manifest(world.acme, "alpine", f"v{index}")
    variables: dict[str, Any] = {"fullPath": "acme", "first": 2}
    first = await world.data(DETAILS, variables, as_user="guest")
    assert image_names(first) == ["alpine:v4", "alpine:v3"]
    assert page_info(first)["hasNextPage"] and not page_info(first)["hasPreviousPage"]

    variables["after"] = page_info(first)["endCursor"]
    second = await world.data(DETAILS, variables, as_user="guest")
    assert image_names(second) == ["alpine:v2", "alpine:v1"]
    assert page_info(second)["hasNextPage"] and page_info(second)["hasPreviousPage"]

    back = {"fullPath": "acme", "last": 2, "before": page_info(second)["startCursor"]}
    previous = await world.data(DETAILS, back, as_user="guest")
    assert image_names(previous) == ["alpine:v4", "alpine:v3"]
    assert page_info(previous)["hasNextPage"] and not page_info(previous)["hasPreviousPage"]

    tail = await world.data(DETAILS, {"fullPath": "acme", "last": 2}, as_user="guest")
    assert image_names(tail) == ["alpine:v1", "alpine:v0"]
    assert page_info(tail)["hasPreviousPage"] and not page_info(tail)["hasNextPage"]


async def test_bad_cursor_and_both_directions_are_field_errors(world: World) -> None:
    body = await world.gql(DETAILS, {"fullPath": "acme", "after": "garbage"}, as_user="guest")
    assert "invalid cursor" in body["errors"][0]["message"]
    body = await world.gql(DETAILS, {"fullPath": "acme", "first": 1, "last": 1}, as_user="guest")
    assert body["errors"][0]["message"] == "give either first or last, not both"


@pytest.fixture
def query_counter(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every SQL statement the app sends, through the connection's execute methods."""
    statements: list[str] = []
    client_class = type(connections.get("default"))
    for name in ("execute_query", "execute_query_dict", "execute_insert", "execute_many"):
        original = getattr(client_class, name)

        def counting(self: Any, query: str, *args: Any, _original: Any = original) -> Any:
            statements.append(query)
            return _original(self, query, *args)

        monkeypatch.setattr(client_class, name, counting)
    yield statements


async def test_a_page_of_100_manifests_costs_a_constant_number_of_queries(
    world: World, query_counter: list[str]
) -> None:
    await Manifest.bulk_create(
        [
            Manifest(
                group_id=world.acme.id,
                file_name=f"alpine:v{index}.json",
                image_name="alpine",
                reference=f"v{index}",
                digest=f"sha256:{index:064x}",
                content_type="application/vnd.oci.image.manifest.v1+json",
                size=100,
                content=b"x" * 1000,
                read_at=world.acme.created_at,
                checked_at=world.acme.created_at,
            )
            for index in range(150)
        ]
    )
    query_counter.clear()
    data = await world.data(DETAILS, {"fullPath": "acme", "first": 500}, as_user="guest")
    assert len(image_names(data)) == 100  # capped
    assert page_info(data)["hasNextPage"]
    # Authentication, group lookup, policy, summary and one page query: no N+1.
    assert 0 < len(query_counter) <= 20, query_counter
    page_queries = [sql for sql in query_counter if "dependency_proxy_manifests" in sql]
    assert not any('"content"' in sql for sql in page_queries)  # bytes never loaded


async def test_alias_limit_rejects_abusive_queries(world: World) -> None:
    deep = '{ group(fullPath: "acme") { groupMembers { nodes { user { id } } } } }'
    assert "errors" not in await world.gql(deep, as_user="guest")
    nested = (
        "{ a: currentUser { id } "
        + "".join(f'g{index}: group(fullPath: "acme") {{ id }} ' for index in range(20))
        + "}"
    )
    body = await world.gql(nested, as_user="guest")
    assert body["errors"]  # too many aliases
