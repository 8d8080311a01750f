"""Cached images as rows with real manifest JSON and real blob files, for tests of
deleting and pinning one image (which read the blobs a manifest names)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator

from app import clock
from app.dependency_proxy.models import Blob, Manifest
from app.dependency_proxy.storage import BlobStore, write_blob
from app.groups.models import Group

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def sha256(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


async def store_blob(store: BlobStore, group: Group, content: bytes) -> Blob:
    """The bytes in the store (once) and the group's row for them."""
    digest = sha256(content)

    async def chunks() -> AsyncIterator[bytes]:
        yield content

    if await store.stat(digest) is None:
        await write_blob(store, digest, chunks())
    return await Blob.create(
        group_id=group.id, digest=digest, size=len(content), read_at=clock.now()
    )


def image_manifest(config: bytes, *layers: bytes) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": sha256(layer),
                "size": len(layer),
            }
            for layer in layers
        ],
    }
    return json.dumps(document).encode()


def index_manifest(platforms: dict[str, bytes]) -> bytes:
    """An OCI index listing `os/arch` → that platform's manifest bytes."""
    entries = []
    for platform, content in platforms.items():
        os_name, arch = platform.split("/")
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": sha256(content),
                "size": len(content),
                "platform": {"os": os_name, "architecture": arch},
            }
        )
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()


async def cache_manifest(group: Group, image: str, reference: str, content: bytes) -> Manifest:
    """The group's row for `image:reference` (or `image@digest`) holding `content`."""
    is_index = b'"manifests"' in content
    size: int | None = None
    if not is_index:
        document = json.loads(content)
        size = document["config"]["size"] + sum(layer["size"] for layer in document["layers"])
    now = clock.now()
    return await Manifest.create(
        group_id=group.id,
        file_name=f"{image}:{reference}.json",
        image_name=image,
        reference=reference,
        digest=sha256(content),
        content_type=OCI_INDEX if is_index else OCI_MANIFEST,
        size=len(content),
        image_size=size,
        content=content,
        read_at=now,
        checked_at=now,
    )
