"""A group's upstream registries: the ordered list, and which one an image comes from.

Each group has an ordered list of upstreams; a group without one inherits
its nearest ancestor's, and a top-level group without one has the default:
Docker Hub only, i.e. the instance-wide upstream (`DOCKYARD_UPSTREAM_URL`),
with the group's Docker Hub credentials or else the instance default ones.

An image name is resolved here (`candidates`): a host-qualified name
(`ghcr.io/owner/tool`: the first component holds a dot or a colon, or is
`localhost`, as Docker's reference grammar decides) goes only to the group's
upstream with that host; any other name to the upstream that served it first
(remembered per group and image), then to the others in order. Docker Hub's
implicit `library/` namespace applies to Docker Hub upstreams only.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from app.config import Settings
from app.dependency_proxy import credentials
from app.dependency_proxy.errors import (
    BlobUnknown,
    DependencyProxyError,
    DigestMismatch,
    ManifestUnknown,
    NoUpstreamForHost,
    TooLarge,
    UpstreamDenied,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from app.dependency_proxy.models import ImageUpstream, Upstream
from app.dependency_proxy.upstream_auth import UpstreamCredentials, fingerprint_of
from app.groups.models import Group

DOCKER_HUB_NAME = "docker-hub"
DOCKER_HUB_URL = "https://registry-1.docker.io"
#: Every name Docker Hub's registry answers to; `docker.io/...` names it in references.
DOCKER_HUB_HOSTS = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)


@dataclass(frozen=True)
class DefaultCredentials:
    """The instance's Docker Hub credentials, for groups that set none (encrypted)."""

    identity_encrypted: str | None
    secret_encrypted: str | None


@dataclass(frozen=True)
class UpstreamEntry:
    """One upstream as a pull uses it (credentials decrypted, URL resolved)."""

    id: int | None  # None: the implicit default of a group without a list
    name: str
    url: str
    docker_hub: bool
    credentials: UpstreamCredentials | None
    cache_validity_hours: int | None
    #: The group whose list this is (the pulling group or an ancestor); None for the default.
    owner_group_id: int | None

    @property
    def host(self) -> str:
        return httpx.URL(self.url).netloc.decode("ascii").lower()

    def answers_to(self, host: str) -> bool:
        """Whether a reference's host component names this upstream."""
        host = host.lower()
        if self.docker_hub:
            return host in DOCKER_HUB_HOSTS or host == self.host
        return host == self.host


@dataclass(frozen=True)
class Candidate:
    """An upstream to ask, and the image's name there."""

    upstream: UpstreamEntry
    image: str


def is_docker_hub_url(url: str) -> bool:
    return httpx.URL(url).host.lower() in DOCKER_HUB_HOSTS


def split_host(image: str) -> tuple[str | None, str]:
    """(`ghcr.io`, `owner/tool`) for a host-qualified name, (None, image) otherwise."""
    first, separator, rest = image.partition("/")
    if separator and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, image


def _decrypted(
    settings: Settings, identity_encrypted: str | None, secret_encrypted: str | None, url: str
) -> UpstreamCredentials | None:
    if not identity_encrypted or not secret_encrypted:
        return None
    identity = credentials.decrypt(settings.secret_key, identity_encrypted)
    secret = credentials.decrypt(settings.secret_key, secret_encrypted)
    if identity is None or secret is None:
        return None
    return UpstreamCredentials(
        username=identity,
        password=secret,
        fingerprint=credentials.fingerprint(settings.secret_key, identity, secret, url),
    )


def entry_of(
    row: Upstream | None, settings: Settings, defaults: DefaultCredentials | None
) -> UpstreamEntry:
    """The pull's view of a row (None: the implicit Docker Hub default)."""
    url = (row.url if row is not None else None) or settings.upstream_url.rstrip("/")
    docker_hub = row is None or row.url is None or is_docker_hub_url(url)
    found = (
        _decrypted(settings, row.identity_encrypted, row.secret_encrypted, url)
        if row is not None
        else None
    )
    if found is None and docker_hub and defaults is not None:
        # The instance's Docker Hub account, only where the group set none.
        found = _decrypted(settings, defaults.identity_encrypted, defaults.secret_encrypted, url)
    return UpstreamEntry(
        id=row.id if row is not None else None,
        name=row.name if row is not None else DOCKER_HUB_NAME,
        url=url,
        docker_hub=docker_hub,
        credentials=found,
        cache_validity_hours=row.cache_validity_hours if row is not None else None,
        owner_group_id=row.group_id if row is not None else None,  # type: ignore[attr-defined]
    )


async def effective_rows(group: Group) -> tuple[Group | None, list[Upstream]]:
    """The list that applies to `group`: its own, or its nearest ancestor's (and whose)."""
    rows = await Upstream.filter(group__full_path_key__in=group.ancestor_keys).select_related(
        "group"
    )
    if not rows:
        return None, []
    nearest = max((row.group for row in rows), key=lambda owner: len(owner.full_path_key))
    own = sorted(
        (row for row in rows if row.group_id == nearest.id),  # type: ignore[attr-defined]
        key=lambda row: (row.position, row.id),
    )
    return nearest, own


async def upstreams_for(
    group: Group, settings: Settings, defaults: DefaultCredentials | None
) -> tuple[UpstreamEntry, ...]:
    """The group's upstreams in order (never empty)."""
    _, rows = await effective_rows(group)
    if not rows:
        return (entry_of(None, settings, defaults),)
    return tuple(entry_of(row, settings, defaults) for row in rows)


async def candidates(
    group: Group, upstreams: tuple[UpstreamEntry, ...], image: str
) -> list[Candidate]:
    """Where to look for `image`, in the order to ask. Raises NoUpstreamForHost."""
    host, rest = split_host(image)
    if host is not None:
        matching = [entry for entry in upstreams if entry.answers_to(host)]
        if not matching:
            raise NoUpstreamForHost(
                f"{image}: the group {group.full_path} has no upstream for {host}: "
                "an Owner can add one in the group's Dependency Proxy settings"
            )
        return [Candidate(entry, rest) for entry in matching]
    ordered = list(upstreams)
    if len(ordered) > 1:
        remembered = await remembered_upstream_id(group.id, image)
        ordered.sort(key=lambda entry: entry.id != remembered)  # stable: the rest keep order
    return [Candidate(entry, image) for entry in ordered]


async def remembered_upstream_id(group_id: int, image: str) -> int | None:
    row = await ImageUpstream.get_or_none(group_id=group_id, image_name=image)
    return row.upstream_id if row is not None else None  # type: ignore[attr-defined]


async def remember(group_id: int, image: str, upstream: UpstreamEntry) -> None:
    """Ask `upstream` first for this image from now on (a no-op for the implicit default)."""
    if upstream.id is None:
        return
    updated = await ImageUpstream.filter(group_id=group_id, image_name=image).update(
        upstream_id=upstream.id
    )
    if not updated:
        await ImageUpstream.get_or_create(
            group_id=group_id, image_name=image, defaults={"upstream_id": upstream.id}
        )


#: Answers that mean "try the next upstream" on a cold miss: it lacks the image,
#: refuses it, is down or limited, or sent something we cannot use.
FAILOVER_ERRORS = (ManifestUnknown, BlobUnknown, UpstreamError, DigestMismatch, TooLarge)


def first_failure(errors: list[DependencyProxyError]) -> DependencyProxyError:
    """What to tell the client when every upstream failed: "not found" only if every
    upstream said so, else the first sign that one that may have it could not answer."""
    for kind in ((UpstreamUnavailable, UpstreamRateLimited), (UpstreamDenied,)):
        for error in errors:
            if isinstance(error, kind):
                return error
    return errors[0]


def source_key(found: list[Candidate]) -> tuple[tuple[str, str, str], ...]:
    """Which upstreams a short-lived answer came from, with which credentials and under
    which name: part of every cache key, so an answer never serves a group whose
    list or credentials differ (and a changed list asks again)."""
    return tuple(
        (entry.upstream.url, fingerprint_of(entry.upstream.credentials), entry.image)
        for entry in found
    )


async def image_sources(
    group: Group, upstreams: tuple[UpstreamEntry, ...], image: str
) -> list[Candidate]:
    """Where to ask for an image's listings (tags, referrers): only the upstream that
    served its manifests once one did (another registry's same-named repository is
    not this image), else every candidate in order."""
    found = await candidates(group, upstreams, image)
    if len(found) > 1:
        remembered = await remembered_upstream_id(group.id, image)
        if remembered is not None and found[0].upstream.id == remembered:
            return found[:1]
    return found
