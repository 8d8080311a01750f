"""The OCI grammar for what a pull names: group path, image, tag, digest.

Nothing from a request reaches a query or a file path before passing here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum

from app.dependency_proxy.errors import InvalidReference
from app.groups.paths import full_path_error

PROXY_SEGMENT = "/dependency_proxy/containers/"
MAX_IMAGE_SEGMENTS = 5
MAX_NAME_LENGTH = 255

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
IMAGE_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_ANY_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


class Kind(StrEnum):
    MANIFEST = "manifests"
    BLOB = "blobs"
    TAGS = "tags"  # `<repository>/tags/list`: reference is "list"
    REFERRERS = "referrers"  # OCI 1.1 `<repository>/referrers/<digest>`


@dataclass(frozen=True)
class Reference:
    """A parsed registry request path."""

    group_path: str
    image: str
    kind: Kind
    reference: str  # a tag or a digest for manifests, a digest for blobs
    #: Registry-mirror mode: the plain name the client asked for (`library/alpine`).
    mirror_name: str | None = None

    @property
    def is_digest(self) -> bool:
        return self.reference.startswith("sha256:")

    @property
    def repository(self) -> str:
        """The repository name as clients send it in token scopes."""
        if self.mirror_name is not None:
            return self.mirror_name
        return f"{self.group_path}{PROXY_SEGMENT}{self.image}"


def validate_image(image: str) -> str:
    if len(image) > MAX_NAME_LENGTH or not IMAGE_RE.match(image):
        raise InvalidReference(f"invalid image name {image!r}")
    if image.count("/") >= MAX_IMAGE_SEGMENTS:
        raise InvalidReference(f"image name {image!r} has too many segments")
    return image


def validate_digest(digest: str) -> str:
    if DIGEST_RE.match(digest):
        return digest
    if _ANY_DIGEST_RE.match(digest) and not digest.startswith("sha256:"):
        raise InvalidReference(
            f"unsupported digest algorithm in {digest!r}: only sha256", part="digest"
        )
    raise InvalidReference(f"invalid digest {digest!r}", part="digest")


def validate_tag(tag: str) -> str:
    if not TAG_RE.match(tag):
        raise InvalidReference(f"invalid tag {tag!r}", part="tag")
    return tag


def validate_manifest_reference(reference: str) -> str:
    """A tag or a digest. Anything else names no manifest: part "reference",
    which the registry answers 404 MANIFEST_UNKNOWN, as the CNCF registry does."""
    if ":" in reference:
        return validate_digest(reference)
    if not TAG_RE.match(reference):
        raise InvalidReference(
            f"{reference!r} is neither a tag nor a digest: no such manifest", part="reference"
        )
    return reference


def parse_repository(repository: str) -> tuple[str, str]:
    """`<group path>/dependency_proxy/containers/<image>` → (group path, image)."""
    group_path, separator, image = repository.partition(PROXY_SEGMENT)
    if not separator or not group_path or not image:
        raise InvalidReference(f"{repository!r} is not a Dependency Proxy repository", part="path")
    if full_path_error(group_path):
        raise InvalidReference(f"invalid group path {group_path!r}")
    return group_path, validate_image(image)


def _split(path: str) -> tuple[str, Kind, str]:
    """`<repository>/<kind>/<reference>`, split at the last kind segment: an image
    may itself be called `blobs` or `manifests` (`.../containers/blobs/manifests/1`)."""
    if path.endswith("/tags/list"):
        return path.removesuffix("/tags/list"), Kind.TAGS, "list"
    best: tuple[str, Kind, str] | None = None
    for kind in (Kind.MANIFEST, Kind.BLOB, Kind.REFERRERS):
        repository, separator, reference = path.rpartition(f"/{kind.value}/")
        if separator and (best is None or len(repository) > len(best[0])):
            best = (repository, kind, reference)
    if best is None:
        raise InvalidReference("not a manifest, blob, tags or referrers path", part="path")
    return best


def _checked(kind: Kind, reference: str) -> str:
    """The reference checked for its kind (after the repository: a wrong path says so first)."""
    if kind is Kind.MANIFEST:
        return validate_manifest_reference(reference)
    if kind is Kind.TAGS:
        return reference
    return validate_digest(reference)


def parse_path(path: str) -> Reference:
    """Parse what follows `/v2/`: `<repository>/(manifests|blobs|referrers)/<reference>`
    or `<repository>/tags/list`."""
    repository, kind, reference = _split(path)
    group_path, image = parse_repository(repository)
    reference = _checked(kind, reference)
    return Reference(group_path=group_path, image=image, kind=kind, reference=reference)


def mirror_image(name: str) -> str:
    """The image a plain Docker Hub name means in the mirror group's cache:
    `library/alpine` is the `alpine` a proxy pull caches, so both share rows."""
    name = validate_image(name)
    namespace, _, rest = name.partition("/")
    return rest if namespace == "library" and rest and "/" not in rest else name


def parse_mirror_repository(name: str, mirror_group: str) -> tuple[str, str]:
    """A plain Docker Hub repository (`library/alpine`, `bitnami/redis`) in mirror
    mode → (the mirror group's path, the image there)."""
    if PROXY_SEGMENT in f"/{name}/":
        raise InvalidReference(f"{name!r} is not a plain repository name", part="path")
    return mirror_group, mirror_image(name)


def parse_mirror_path(path: str, mirror_group: str) -> Reference:
    """A registry-mirror request (`library/alpine/manifests/3.19`): the mirror group's
    image, scoped for tokens by the plain name the client asked for."""
    repository, kind, reference = _split(path)
    group_path, image = parse_mirror_repository(repository, mirror_group)
    reference = _checked(kind, reference)
    return Reference(
        group_path=group_path, image=image, kind=kind, reference=reference, mirror_name=repository
    )


def manifest_file_name(image: str, reference: str) -> str:
    """GitLab's file name for a cached manifest: `alpine:latest.json`."""
    return f"{image}:{reference}.json"


def image_size(content: bytes) -> int | None:
    """Config + layer sizes of a single-platform manifest; None for an index
    (or anything that does not parse: the size is only shown, never trusted)."""
    try:
        document = json.loads(content)
        sizes = [document["config"]["size"], *(layer["size"] for layer in document["layers"])]
    except (ValueError, KeyError, TypeError):
        return None
    if not all(isinstance(size, int) and size >= 0 for size in sizes):
        return None
    return sum(sizes)


def index_platforms(content: bytes) -> dict[str, str]:
    """digest → `os/architecture[/variant]` of the manifests a multi-platform index
    lists; empty for anything else (shown only, never trusted)."""
    try:
        entries = json.loads(content)["manifests"]
    except (ValueError, KeyError, TypeError):
        return {}
    platforms: dict[str, str] = {}
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
            continue
        platform = entry.get("platform")
        if not isinstance(platform, dict):
            platform = {}
        parts = [platform.get(key) for key in ("os", "architecture", "variant")]
        platforms[entry["digest"]] = "/".join(str(part) for part in parts if part) or "unknown"
    return platforms


def blob_digests(content: bytes) -> set[str]:
    """The config and layer digests a single-platform manifest names; empty for an
    index (it names manifests, not blobs) or anything that does not parse.

    Used to decide which of a group's blob rows an image still needs; a digest
    outside the grammar is left out, so nothing unparsed reaches a query."""
    try:
        document = json.loads(content)
        entries = [document["config"], *document["layers"]]
    except (ValueError, KeyError, TypeError):
        return set()
    found: set[str] = set()
    for entry in entries:
        digest = entry.get("digest") if isinstance(entry, dict) else None
        if isinstance(digest, str) and DIGEST_RE.match(digest):
            found.add(digest)
    return found
