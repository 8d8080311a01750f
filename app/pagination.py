"""Keyset pagination over `id` with opaque cursors (GraphQL connections and pages).

Cursors are base64 of `{"id": "<n>"}`, as GitLab's. Keyset rather than offset
pagination keeps every page one indexed query, and a page does not shift when
rows are added at the front while someone is paging.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from tortoise.queryset import QuerySet

from app.errors import InvalidInput

MAX_PAGE_SIZE = 100


class HasId(Protocol):
    @property
    def id(self) -> int: ...


T = TypeVar("T", bound=HasId)


def encode_cursor(ident: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"id": str(ident)}).encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return int(data["id"])
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise InvalidInput(f"invalid cursor {cursor!r}") from None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    has_next_page: bool
    has_previous_page: bool

    def cursor_for(self, item: T) -> str:
        return encode_cursor(item.id)

    @property
    def start_cursor(self) -> str | None:
        return self.cursor_for(self.items[0]) if self.items else None

    @property
    def end_cursor(self) -> str | None:
        return self.cursor_for(self.items[-1]) if self.items else None


def page_size(first: int | None, last: int | None) -> int:
    if first is not None and last is not None:
        raise InvalidInput("give either first or last, not both")
    wanted = first if first is not None else last
    if wanted is None:
        return MAX_PAGE_SIZE
    if wanted < 0:
        raise InvalidInput("first and last must not be negative")
    return min(wanted, MAX_PAGE_SIZE)  # GitLab caps silently too


async def paginate(
    query: QuerySet[Any],
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    newest_first: bool = True,
) -> Page[Any]:
    """One page of `query` ordered by id (descending when `newest_first`).

    `first`/`after` page forwards, `last`/`before` backwards; the page size
    defaults to, and is capped at, MAX_PAGE_SIZE.
    """
    size = page_size(first, last)
    after_id = decode_cursor(after) if after is not None else None
    before_id = decode_cursor(before) if before is not None else None
    # "later in the list" is a smaller id when the newest come first.
    later, earlier = ("id__lt", "id__gt") if newest_first else ("id__gt", "id__lt")
    # The cursor's own row counts as "before" the page that starts after it.
    at_or_earlier, at_or_later = (earlier + "e", later + "e")
    bounded = query
    if after_id is not None:
        bounded = bounded.filter(**{later: after_id})
    if before_id is not None:
        bounded = bounded.filter(**{earlier: before_id})
    forward_order, backward_order = ("-id", "id") if newest_first else ("id", "-id")
    if last is None:
        rows = list(await bounded.order_by(forward_order).limit(size + 1))
        has_previous = after_id is not None and await _exists(query, at_or_earlier, after_id)
        return Page(rows[:size], has_next_page=len(rows) > size, has_previous_page=has_previous)
    rows = list(await bounded.order_by(backward_order).limit(size + 1))
    has_next = before_id is not None and await _exists(query, at_or_later, before_id)
    items = list(reversed(rows[:size]))
    return Page(items, has_next_page=has_next, has_previous_page=len(rows) > size)


async def _exists(query: QuerySet[Any], lookup: str, ident: int) -> bool:
    return bool(await query.filter(**{lookup: ident}).exists())
