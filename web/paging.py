"""Keyset paging and search for the pages' lists: which page the query string asks for,
and the links to the pages before and after (other parameters kept).

Each list of a page has its own prefix (`members_`, `users_`...), so two lists
on one page page independently; a stale or edited cursor starts the list again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from starlette.requests import Request

from app.errors import InvalidInput
from app.pagination import HasId, Page

T = TypeVar("T", bound=HasId)
PAGE_SIZE = 20


@dataclass(frozen=True)
class Listing(Generic[T]):
    """One page of a list as a page shows it."""

    items: list[T]
    search: str
    next: str | None
    previous: str | None
    search_field: str  # the query parameter of this list's search box


def _link(request: Request, prefix: str, name: str, cursor: str) -> str:
    params = {
        key: value
        for key, value in request.query_params.items()
        if key not in (f"{prefix}after", f"{prefix}before")
    }
    params[f"{prefix}{name}"] = cursor
    return f"{request.url.path}?{urlencode(params)}"


async def listing(
    request: Request,
    prefix: str,
    fetch: Callable[..., Awaitable[Page[T]]],
    *,
    size: int = PAGE_SIZE,
    searchable: bool = True,
) -> Listing[T]:
    """The page of `fetch(search=..., first/after | last/before)` the query string asks for."""
    params = request.query_params
    search = params.get(f"{prefix}q", "").strip() if searchable else ""
    extra: dict[str, Any] = {"search": search or None} if searchable else {}
    after, before = params.get(f"{prefix}after"), params.get(f"{prefix}before")
    try:
        if before:
            page = await fetch(last=size, before=before, **extra)
        else:
            page = await fetch(first=size, after=after or None, **extra)
    except InvalidInput:  # a stale or edited cursor: start again from the beginning
        page = await fetch(first=size, **extra)
    next_link = previous = None
    if page.has_next_page and page.end_cursor:
        next_link = _link(request, prefix, "after", page.end_cursor)
    if page.has_previous_page and page.start_cursor:
        previous = _link(request, prefix, "before", page.start_cursor)
    return Listing(page.items, search, next_link, previous, f"{prefix}q")
