"""Build OCI and Docker images in pure Python and push them to a registry.

Everything a test may want to compare is returned in frozen dataclasses: every
digest, size and media type, and the raw manifest and blob bytes (except for
streamed large layers, which are never held in memory: compare their digest).
Content comes from seeded ``random.Random`` instances, so a seed always gives
the same bytes and digests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from tests.support.reference_registry import RegistryPusher

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

Format = Literal["oci", "docker"]
MiB = 1024 * 1024
_MEDIA_TYPES: dict[Format, tuple[str, str, str, str]] = {
    # manifest, config, layer, index
    "oci": (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER, OCI_INDEX),
    "docker": (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST_LIST),
}


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    """A config or layer blob. ``data`` is None for streamed (large) layers."""

    digest: str
    size: int
    media_type: str
    data: bytes | None = None
    #: sha256 of the uncompressed tar, for layers.
    diff_id: str | None = None


@dataclass(frozen=True)
class Platform:
    architecture: str
    os: str = "linux"
    variant: str | None = None

    def as_json(self) -> dict[str, str]:
        fields = {"architecture": self.architecture, "os": self.os}
        return fields | ({"variant": self.variant} if self.variant else {})


@dataclass(frozen=True)
class Image:
    """A single-platform image as pushed: manifest bytes exactly as stored."""

    repository: str
    tag: str | None
    media_type: str
    manifest: bytes
    digest: str
    config: Blob
    layers: tuple[Blob, ...]
    platform: Platform

    @property
    def size(self) -> int:
        return len(self.manifest)

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (self.config, *self.layers)

    @property
    def reference(self) -> str:
        """``repository:tag`` (or ``repository@digest`` if untagged)."""
        return f"{self.repository}:{self.tag}" if self.tag else self.by_digest

    @property
    def by_digest(self) -> str:
        return f"{self.repository}@{self.digest}"


@dataclass(frozen=True)
class ImageIndex:
    """A multi-platform image (OCI index or Docker manifest list)."""

    repository: str
    tag: str | None
    media_type: str
    manifest: bytes
    digest: str
    manifests: tuple[Image, ...]

    @property
    def size(self) -> int:
        return len(self.manifest)

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}" if self.tag else self.by_digest

    @property
    def by_digest(self) -> str:
        return f"{self.repository}@{self.digest}"

    def for_platform(self, architecture: str) -> Image:
        return next(m for m in self.manifests if m.platform.architecture == architecture)


# -- layers ----------------------------------------------------------------


def tar_gz_layer(files: Mapping[str, bytes], media_type: str = OCI_LAYER) -> Blob:
    """A deterministic gzipped tar holding ``files`` (path → content)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(content), 0o644, 0
            tar.addfile(info, io.BytesIO(content))
    uncompressed = raw.getvalue()
    data = gzip.compress(uncompressed, compresslevel=6, mtime=0)
    return Blob(sha256_digest(data), len(data), media_type, data, sha256_digest(uncompressed))


def random_layer(seed: int, size: int = 4096, media_type: str = OCI_LAYER) -> Blob:
    """A small layer with one file of ``size`` seeded random bytes."""
    content = random.Random(seed).randbytes(size)
    return tar_gz_layer({f"data/{seed}.bin": content}, media_type)


class StreamedLayer:
    """A gzipped tar with one file of ``size`` seeded random bytes, made while read.

    Iterate it once to get the compressed bytes; afterwards ``blob()`` gives the
    digest, size and diff_id. ``compresslevel=0`` (stored deflate blocks, still
    valid gzip) keeps 256 MiB+ layers fast, as random bytes do not compress.
    """

    def __init__(
        self, size: int, seed: int, compresslevel: int = 0, media_type: str = OCI_LAYER
    ) -> None:
        self.size_uncompressed_file = size
        self.seed = seed
        self.compresslevel = compresslevel
        self.media_type = media_type
        self._compressed = hashlib.sha256()
        self._uncompressed = hashlib.sha256()
        self._compressed_size = 0
        self._done = False

    def _tar_stream(self) -> Iterator[bytes]:
        info = tarfile.TarInfo(f"data/large-{self.seed}.bin")
        info.size, info.mode, info.mtime = self.size_uncompressed_file, 0o644, 0
        header = info.tobuf(format=tarfile.PAX_FORMAT)
        yield header
        rng = random.Random(self.seed)
        remaining = self.size_uncompressed_file
        while remaining:
            piece = min(remaining, MiB)
            yield rng.randbytes(piece)
            remaining -= piece
        written = len(header) + self.size_uncompressed_file
        padding = -written % tarfile.BLOCKSIZE
        end = padding + 2 * tarfile.BLOCKSIZE
        end += -(written + end) % tarfile.RECORDSIZE
        yield bytes(end)

    def __iter__(self) -> Iterator[bytes]:
        if self._done:
            raise RuntimeError("a StreamedLayer can be read only once")
        compressor = zlib.compressobj(self.compresslevel, zlib.DEFLATED, 31)
        for piece in self._tar_stream():
            self._uncompressed.update(piece)
            yield from self._emit(compressor.compress(piece))
        yield from self._emit(compressor.flush())
        self._done = True

    def _emit(self, data: bytes) -> Iterator[bytes]:
        if data:
            self._compressed.update(data)
            self._compressed_size += len(data)
            yield data

    def blob(self) -> Blob:
        if not self._done:
            raise RuntimeError("read the layer before asking for its digest")
        digest = "sha256:" + self._compressed.hexdigest()
        diff_id = "sha256:" + self._uncompressed.hexdigest()
        return Blob(digest, self._compressed_size, self.media_type, None, diff_id)


# -- images ----------------------------------------------------------------


def image_config(layers: Sequence[Blob], platform: Platform, media_type: str) -> Blob:
    config = {
        "architecture": platform.architecture,
        "os": platform.os,
        **({"variant": platform.variant} if platform.variant else {}),
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "tests"} for _ in layers],
    }
    data = json.dumps(config, indent=2, sort_keys=True).encode()
    return Blob(sha256_digest(data), len(data), media_type, data)


def _descriptor(blob: Blob) -> dict[str, object]:
    return {"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size}


def push_image(
    pusher: RegistryPusher,
    repository: str,
    tag: str | None,
    layers: Sequence[Blob],
    platform: Platform = Platform("amd64"),
    fmt: Format = "oci",
) -> Image:
    """Push layers (those with ``data``; streamed ones must already be pushed),
    a config and a manifest; tag it, or push it by digest if ``tag`` is None."""
    manifest_type, config_type, _, _ = _MEDIA_TYPES[fmt]
    config = image_config(layers, platform, config_type)
    for blob in (config, *layers):
        if blob.data is not None:
            pusher.push_blob(repository, blob.data)
    document = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": _descriptor(config),
        "layers": [_descriptor(layer) for layer in layers],
    }
    manifest = json.dumps(document, indent=3).encode()
    digest = pusher.push_manifest(repository, tag, manifest, manifest_type)
    return Image(repository, tag, manifest_type, manifest, digest, config, tuple(layers), platform)


def push_small_image(
    pusher: RegistryPusher,
    repository: str = "library/alpine",
    tag: str | None = "3.19",
    seed: int = 1,
    fmt: Format = "oci",
    platform: Platform = Platform("amd64"),
) -> Image:
    """An alpine-like image: a release file layer and a 64 KiB random layer."""
    layer_type = _MEDIA_TYPES[fmt][2]
    release = tar_gz_layer({"etc/os-release": f"ID=test\nSEED={seed}\n".encode()}, layer_type)
    layers = [release, random_layer(seed, 64 * 1024, layer_type)]
    return push_image(pusher, repository, tag, layers, platform, fmt)


def push_multiarch_index(
    pusher: RegistryPusher,
    repository: str = "library/busybox",
    tag: str | None = "1.36",
    seed: int = 10,
    fmt: Format = "oci",
) -> ImageIndex:
    """An index with linux/amd64 and linux/arm64/v8 children pushed by digest."""
    _, _, _, index_type = _MEDIA_TYPES[fmt]
    platforms = (Platform("amd64"), Platform("arm64", variant="v8"))
    children = tuple(
        push_small_image(pusher, repository, None, seed + i, fmt, platform)
        for i, platform in enumerate(platforms)
    )
    document = {
        "schemaVersion": 2,
        "mediaType": index_type,
        "manifests": [
            {
                "mediaType": child.media_type,
                "digest": child.digest,
                "size": child.size,
                "platform": child.platform.as_json(),
            }
            for child in children
        ],
    }
    manifest = json.dumps(document, indent=3).encode()
    digest = pusher.push_manifest(repository, tag, manifest, index_type)
    return ImageIndex(repository, tag, index_type, manifest, digest, children)


def push_many_layers_image(
    pusher: RegistryPusher,
    repository: str = "library/many-layers",
    tag: str | None = "latest",
    count: int = 20,
    layer_size: int = 2048,
    seed: int = 100,
) -> Image:
    layers = [random_layer(seed + i, layer_size) for i in range(count)]
    return push_image(pusher, repository, tag, layers)


def push_large_image(
    pusher: RegistryPusher,
    repository: str = "library/large",
    tag: str | None = "latest",
    size: int = 8 * MiB,
    seed: int = 1000,
    chunk_size: int = 8 * MiB,
) -> Image:
    """One layer of ``size`` random bytes, generated and pushed in chunks."""
    layer = StreamedLayer(size, seed)
    pusher.push_blob_chunked(repository, layer, chunk_size)
    return push_image(pusher, repository, tag, [layer.blob()])


@dataclass(frozen=True)
class SeededImages:
    """What :func:`seed_registry` pushed; every test may rely on these."""

    alpine: Image  # library/alpine:3.19, OCI, 2 layers
    busybox: ImageIndex  # library/busybox:1.36, OCI index amd64 + arm64
    redis: ImageIndex  # library/redis:7, Docker manifest list amd64 + arm64
    nginx: Image  # library/nginx:1.25, Docker schema2
    many_layers: Image  # library/many-layers:latest, 20 layers
    large: Image  # library/large:latest, one streamed layer
    private: Image  # private/secret:1.0, alice may pull, anonymous may not

    def all_images(self) -> tuple[Image | ImageIndex, ...]:
        return (
            self.alpine,
            self.busybox,
            self.redis,
            self.nginx,
            self.many_layers,
            self.large,
            self.private,
        )


def seed_registry(pusher: RegistryPusher, large_size: int = 8 * MiB) -> SeededImages:
    return SeededImages(
        alpine=push_small_image(pusher),
        busybox=push_multiarch_index(pusher),
        redis=push_multiarch_index(pusher, "library/redis", "7", seed=20, fmt="docker"),
        nginx=push_small_image(pusher, "library/nginx", "1.25", seed=30, fmt="docker"),
        many_layers=push_many_layers_image(pusher),
        large=push_large_image(pusher, size=large_size),
        private=push_small_image(pusher, "private/secret", "1.0", seed=40),
    )
