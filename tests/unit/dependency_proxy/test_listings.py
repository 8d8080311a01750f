"""Tag list pages and the short cache behind tags/list and the negative cache."""

from __future__ import annotations

import asyncio

import pytest

from app.dependency_proxy import short_cache
from app.dependency_proxy.errors import InvalidReference, UpstreamUnavailable
from app.dependency_proxy.listings import TagPage, next_page, parse_tags
from app.dependency_proxy.services.list_tags import _result, page_request
from app.dependency_proxy.short_cache import ShortCache


def test_tags_come_sorted_and_names_off_the_grammar_are_dropped() -> None:
    content = b'{"name": "x", "tags": ["b", "a", "../etc", "-x", 7, "sha256-ab.sig"]}'
    assert parse_tags(content, "x") == ("a", "b", "sha256-ab.sig")
    assert parse_tags(b'{"name": "x", "tags": null}', "x") == ()
    with pytest.raises(UpstreamUnavailable):
        parse_tags(b"<html>", "x")


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ('</v2/library/alpine/tags/list?n=2&last=3.19>; rel="next"', ("3.19", 2)),
        ("</v2/a/tags/list?last=b>; rel=next", ("b", None)),
        ('</v2/a/tags/list?n=2&last=..%2Fx>; rel="next"', (None, None)),
        ('</v2/a/tags/list?n=2&last=b>; rel="prev"', (None, None)),
        ("", (None, None)),
    ],
)
def test_the_next_page_is_read_from_the_link_header(
    link: str, expected: tuple[str | None, int | None]
) -> None:
    assert next_page(link) == expected


def test_an_upstream_that_does_not_page_is_paged_here() -> None:
    everything = TagPage(("1", "2", "3", "4", "5"))
    first = _result(everything, "MISS", 2, None)
    assert (first.tags, first.next_last, first.next_n) == (("1", "2"), "2", 2)
    middle = _result(everything, "MISS", 2, "2")
    assert (middle.tags, middle.next_last) == (("3", "4"), "4")
    end = _result(everything, "MISS", 2, "4")
    assert (end.tags, end.next_last, end.next_n) == (("5",), None, None)


def test_an_upstream_page_and_its_link_pass_through() -> None:
    page = TagPage(("c", "d"), next_last="d", next_n=2)
    result = _result(page, "HIT", 2, "b")
    assert (result.tags, result.next_last, result.next_n, result.cache) == (
        ("c", "d"),
        "d",
        2,
        "HIT",
    )


@pytest.mark.parametrize("n", ["-1", "x", "10001", "1e3"])
def test_a_bad_page_size_is_refused_before_the_upstream(n: str) -> None:
    with pytest.raises(InvalidReference) as raised:
        page_request(n, None)
    assert raised.value.part == "pagination"


def test_a_bad_last_is_refused() -> None:
    with pytest.raises(InvalidReference):
        page_request("2", "../etc")
    assert page_request("", "") == (None, None)
    assert page_request("0", "1.0") == (0, "1.0")


def test_short_cache_entries_go_stale_and_the_oldest_use_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(short_cache.time, "monotonic", lambda: now[0])
    cache: ShortCache[str] = ShortCache(ttl=60, max_entries=2)
    cache.put("a", "A")
    cache.put("b", "B")
    entry = cache.get("a")
    assert entry is not None and entry.fresh and entry.value == "A"
    now[0] += 61
    stale = cache.get("a")
    assert stale is not None and not stale.fresh and stale.value == "A"
    cache.put("c", "C")  # "b" was used least recently
    assert cache.get("b") is None and cache.get("a") is not None
    cache.drop_where(lambda key: key == "a")
    assert cache.get("a") is None and len(cache) == 1


async def test_concurrent_fetches_of_one_key_share_one_request() -> None:
    cache: ShortCache[str] = ShortCache(ttl=60)
    calls = 0
    release = asyncio.Event()

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "page"

    waiting = [asyncio.create_task(cache.fetch_once("k", fetch)) for _ in range(5)]
    other = asyncio.create_task(cache.fetch_once("other", fetch))
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting, other) == ["page"] * 6
    assert calls == 2  # one per key
    entry = cache.get("k")
    assert entry is not None and entry.value == "page" and entry.fresh


async def test_a_failed_fetch_fails_every_waiter_and_stores_nothing() -> None:
    cache: ShortCache[str] = ShortCache(ttl=60)

    async def fetch() -> str:
        await asyncio.sleep(0)
        raise UpstreamUnavailable("down")

    results = await asyncio.gather(
        *(cache.fetch_once("k", fetch) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(result, UpstreamUnavailable) for result in results)
    assert cache.get("k") is None
