"""The internal endpoint: another instance streams a blob this one is downloading.

    GET /-/internal/blobs/sha256:<hex>    Authorization: Dockyard-Internal <token>

The contract (token, headers) is `app/dependency_proxy/downloads/internal.py`.
Only a download in progress on this machine is served, from its spool, with
the last chunk held back until the digest was verified; a committed blob, or
no download, is 404 (the follower then finds the blob in the store). Without a
valid token for exactly this digest: 401 and no bytes, whatever is cached.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from app.config import Settings
from app.dependency_proxy.cache import PullThroughCache
from app.dependency_proxy.downloads import BlobReader, internal
from app.dependency_proxy.errors import DownloadFailed, InvalidReference
from app.dependency_proxy.storage import digest_hex
from registry.errors import oci_error

log = logging.getLogger("dockyard.registry.internal")


async def growing_blob(request: Request) -> Response:
    digest: str = request.path_params["digest"]
    settings: Settings = request.app.state.settings
    try:
        digest_hex(digest)
    except InvalidReference:
        return oci_error(400, "DIGEST_INVALID", "invalid blob digest")
    authorization = request.headers.get("authorization", "")
    if not internal.verify(settings.secret_key, digest, authorization):
        return oci_error(401, "UNAUTHORIZED", "the internal endpoint is for Dockyard instances")
    cache: PullThroughCache = request.app.state.cache
    reader = await cache.downloads.tail(digest)
    if reader is None:
        return oci_error(404, "BLOB_UNKNOWN", "no download of this blob here")
    # The follower's X-Request-Id is adopted (and answered) by app.logging's middleware.
    headers = {"Cache-Control": "no-store"}
    if reader.size is not None:
        headers[internal.SIZE_HEADER] = str(reader.size)
        headers["Content-Length"] = str(reader.size)
    return StreamingResponse(
        _stream(reader, digest), headers=headers, media_type="application/octet-stream"
    )


async def _stream(reader: BlobReader, digest: str) -> AsyncIterator[bytes]:
    try:
        async with reader:
            async for chunk in reader:
                yield chunk
    except DownloadFailed as error:
        # Raising aborts the connection: the follower sees a short body.
        log.warning("blob %s failed while another instance streamed it: %s", digest, error)
        raise


routes: list[BaseRoute] = [
    Route(f"{internal.PATH}{{digest}}", growing_blob, methods=["GET"]),
]
