"""List an image's tags, passed through from the upstream with a short cache.

Renovate and Dependabot page through `tags/list` (`n`, `last`, a `Link` to the
next page) every few minutes; each page is asked of the image's upstream (the
group's upstreams in the order a pull asks them: `upstreams.candidates`; the
first that knows the repository answers) with that upstream's credentials and
reused for `DOCKYARD_TAGS_LIST_CACHE_SECONDS`. When the upstreams fail, the
last page this group got is served, marked stale. Pages are kept per group and
per upstreams and credentials: one group's list (perhaps of a private
repository its credentials can see) never answers another group.
"""

from __future__ import annotations

from dataclasses import dataclass

from app import metrics
from app.dependency_proxy.cache import PullThroughCache
from app.dependency_proxy.errors import (
    DependencyProxyError,
    InvalidReference,
    ManifestUnknown,
    UpstreamDenied,
    UpstreamError,
)
from app.dependency_proxy.listings import TagPage
from app.dependency_proxy.references import validate_tag
from app.dependency_proxy.services.authorize_pull import PullContext
from app.dependency_proxy.upstreams import (
    FAILOVER_ERRORS,
    Candidate,
    first_failure,
    image_sources,
    source_key,
)
from app.dependency_proxy.usage import counted_for_group

#: Largest page a client may ask for (the CNCF registry has no limit; Docker Hub 10000).
MAX_PAGE_SIZE = 10_000


@dataclass(frozen=True)
class TagList:
    tags: tuple[str, ...]
    #: Where the next page starts (the `Link` header), when there is one.
    next_last: str | None
    next_n: int | None
    cache: str  # HIT, MISS or STALE (X-Cache)


def page_request(n: str | None, last: str | None) -> tuple[int | None, str | None]:
    """The client's `n` and `last`, checked before anything goes upstream."""
    size: int | None = None
    if n is not None and n != "":
        if not n.isdigit() or int(n) > MAX_PAGE_SIZE:
            raise InvalidReference(
                f"n must be a whole number from 0 to {MAX_PAGE_SIZE}, not {n[:20]!r}",
                part="pagination",
            )
        size = int(n)
    return size, (validate_tag(last) if last else None)


def _result(page: TagPage, cache: str, n: int | None, last: str | None) -> TagList:
    tags, next_last = page.tags, page.next_last
    if last is not None and next_last is None:
        # An upstream without paging (distribution before 3.0 ignores n and last)
        # sends everything: the page starts after `last`, in lexical order.
        tags = tuple(tag for tag in tags if tag > last)
    if n is not None and len(tags) > n:
        tags = tags[:n]
        next_last = tags[-1] if tags else None
    next_n = page.next_n if page.next_n is not None else n
    return TagList(tags, next_last, next_n if next_last else None, cache)


async def _from_upstreams(
    cache: PullThroughCache, found: list[Candidate], n: int | None, last: str | None
) -> TagPage:
    """The first upstream (in the pull's order) that knows the repository answers;
    one that is down or refuses is passed over only while the image has no
    remembered upstream (`image_sources`)."""
    errors: list[DependencyProxyError] = []
    for candidate in found:
        client = cache.client_for(candidate.upstream.url, candidate.upstream.docker_hub)
        try:
            return await client.list_tags(
                candidate.image, candidate.upstream.credentials, n=n, last=last
            )
        except FAILOVER_ERRORS as error:
            errors.append(error)
    raise first_failure(errors)


@counted_for_group
async def list_tags(
    cache: PullThroughCache, pull: PullContext, image: str, *, n: int | None, last: str | None
) -> TagList:
    """A page of `image`'s tags for the group (pull access was checked by `authorize_pull`)."""
    found = await image_sources(pull.group, pull.upstreams, image)
    key = (pull.group.id, source_key(found), image, n, last)
    entry = cache.tag_lists.get(key)
    if entry is not None and entry.fresh:
        metrics.cache_requests.labels("tags", "hit").inc()
        return _result(entry.value, "HIT", n, last)
    try:
        page = await cache.tag_lists.fetch_once(key, lambda: _from_upstreams(cache, found, n, last))
    except UpstreamError as error:
        # Down or rate-limited: the last page is better than nothing. A refusal
        # (credentials changed upstream) is not papered over.
        if entry is not None and not isinstance(error, UpstreamDenied):
            metrics.cache_requests.labels("tags", "stale").inc()
            return _result(entry.value, "STALE", n, last)
        raise
    except ManifestUnknown:
        raise ManifestUnknown(f"{image} does not exist upstream") from None
    metrics.cache_requests.labels("tags", "miss").inc()
    return _result(page, "MISS", n, last)
