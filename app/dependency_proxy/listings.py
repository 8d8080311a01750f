"""The registry documents behind listings: tag list pages, their `Link` header,
and the image index the referrers API answers (parsing only; `upstream.py`
fetches them)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from app.dependency_proxy.errors import UpstreamUnavailable
from app.dependency_proxy.references import TAG_RE

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
#: Cap for a tag list or referrers page (Docker Hub's largest lists are a few MiB).
TAG_LIST_MAX_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class TagPage:
    """One page of an upstream's tag list, and where the next one starts."""

    tags: tuple[str, ...]
    #: The `last` and `n` of the upstream's `Link: <...>; rel="next"`, if it sent one.
    next_last: str | None = None
    next_n: int | None = None


@dataclass(frozen=True)
class FetchedReferrers:
    """An upstream's answer to the OCI 1.1 referrers API: an image index."""

    content: bytes
    media_type: str
    filters_applied: str  # OCI-Filters-Applied, "" when none


def parse_tags(content: bytes, image: str) -> tuple[str, ...]:
    """The `tags` of a tag list, in lexical order as the OCI spec asks (distribution
    sorts only when paging); names off the tag grammar are dropped (they could
    never be pulled, and they go back out in our own JSON)."""
    try:
        tags = json.loads(content).get("tags") or []
    except (ValueError, AttributeError):
        raise UpstreamUnavailable(f"upstream sent a tag list of {image} that is not JSON") from None
    if not isinstance(tags, list):
        raise UpstreamUnavailable(f"upstream sent a tag list of {image} without a list of tags")
    return tuple(sorted(tag for tag in tags if isinstance(tag, str) and TAG_RE.match(tag)))


def next_page(link: str) -> tuple[str | None, int | None]:
    """`last` and `n` of a `Link: </v2/...?n=2&last=b>; rel="next"` header."""
    match = re.search(r'<([^>]*)>\s*;\s*rel="?next"?', link)
    if match is None:
        return None, None
    query = parse_qs(urlsplit(match.group(1)).query)
    last = query.get("last", [""])[0]
    n = query.get("n", [""])[0]
    if not TAG_RE.match(last):
        return None, None
    return last, int(n) if n.isdigit() else None


def is_index(content: bytes) -> bool:
    try:
        document = json.loads(content)
    except ValueError:
        return False
    return isinstance(document, dict) and isinstance(document.get("manifests"), list)
