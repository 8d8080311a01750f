"""GitLab-style Relay connections: `nodes`, `edges { cursor node }`, `pageInfo`.

Strawberry names each specialisation after its node type
(`DependencyProxyManifestConnection`, `DependencyProxyManifestEdge`), as GitLab does.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import strawberry

from app.pagination import Page

N = TypeVar("N")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[N]):
    cursor: str
    node: N


@strawberry.type
class Connection(Generic[N]):
    edges: list[Edge[N]]
    nodes: list[N]
    page_info: PageInfo


def connection(page: Page[Any], wrap: Any) -> Any:
    """A GitLab-style connection of `wrap(model=item)` nodes for one page."""
    nodes = [wrap(model=item) for item in page.items]
    return Connection(
        edges=[
            Edge(cursor=page.cursor_for(item), node=node)
            for item, node in zip(page.items, nodes, strict=True)
        ],
        nodes=nodes,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.start_cursor,
            end_cursor=page.end_cursor,
        ),
    )
