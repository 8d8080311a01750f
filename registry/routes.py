"""The OCI distribution surface (read-only) at GitLab's URLs.

    GET      /v2/
    GET|POST /jwt/auth
    GET|HEAD /v2/<group>/dependency_proxy/containers/<image>/manifests/<tag|digest>
    GET|HEAD /v2/<group>/dependency_proxy/containers/<image>/blobs/<digest>

Everything else under /v2/ gets an OCI error. This module only translates:
services decide access and do the work.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from app import metrics
from app.config import Settings
from app.dependency_proxy.errors import DownloadFailed, InvalidReference
from app.dependency_proxy.references import Kind, Reference, parse_path
from app.dependency_proxy.services.authorize_pull import PullContext, authorize_pull
from app.dependency_proxy.services.get_blob import StoredBlob, StreamingBlob, get_blob, head_blob
from app.dependency_proxy.services.get_manifest import get_manifest
from app.errors import DockyardError
from app.runtime import Runtime
from registry.auth import bearer_claims, challenge, principal_for
from registry.errors import API_VERSION_HEADER, error_response, oci_error
from registry.token import token_endpoint

log = logging.getLogger("dockyard.registry")

READ_METHODS = ("GET", "HEAD")


class BlobFileResponse(FileResponse):
    # 1 MiB reads: about 3x the throughput of the 64 KiB default (DESIGN §9).
    chunk_size = 1024 * 1024


async def v2_root(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    claims = bearer_claims(request, settings)
    if claims is None or await principal_for(claims) is None:
        return challenge(settings)
    return JSONResponse({}, headers=API_VERSION_HEADER)


def _not_a_route(path: str) -> Response:
    if "/dependency_proxy/containers/" not in f"/{path}":
        return oci_error(
            404,
            "NAME_UNKNOWN",
            "not a Dependency Proxy repository: "
            "pull <host>/<group>/dependency_proxy/containers/<image>",
        )
    return oci_error(404, "UNSUPPORTED", "the Dependency Proxy serves only manifests and blobs")


async def v2_dispatch(request: Request) -> Response:
    path: str = request.path_params["path"]
    if request.method not in READ_METHODS:
        return oci_error(
            405, "UNSUPPORTED", "the Dependency Proxy is read-only: pushes are not supported"
        )
    try:
        reference = parse_path(path)
    except InvalidReference as error:
        if error.part == "path":
            return _not_a_route(path)
        return error_response(error, "manifests")
    settings: Settings = request.app.state.settings
    scope = f"repository:{reference.repository}:pull"
    claims = bearer_claims(request, settings)
    if claims is None:
        return challenge(settings, scope=scope)
    principal = await principal_for(claims)
    if principal is None:
        return challenge(
            settings,
            scope=scope,
            error="invalid_token",
            message="the token was revoked or its owner blocked",
        )
    runtime: Runtime = request.app.state.runtime
    try:
        # Access first: a group the principal may not pull from (or that does not
        # exist) is 404 NAME_UNKNOWN, which docker, podman and skopeo print with its
        # message; a 401 here made docker say "pull access denied ... may require
        # 'docker login'" to a user who was logged in.
        pull = await authorize_pull(principal, reference.group_path, settings)
        if not claims.allows_pull(reference.repository) and not claims.allows_pull(
            reference.repository.lower()
        ):
            return challenge(
                settings,
                scope=scope,
                error="insufficient_scope",
                message="the token does not grant pull on this repository",
            )
        if reference.kind is Kind.MANIFEST:
            return await _manifest(request, runtime, pull, reference)
        return await _blob(request, runtime, pull, reference)
    except DockyardError as error:
        return error_response(error, reference.kind.value)


async def _manifest(
    request: Request, runtime: Runtime, pull: PullContext, reference: Reference
) -> Response:
    result = await get_manifest(runtime, pull, reference.image, reference.reference)
    headers = {
        **API_VERSION_HEADER,
        "Content-Type": result.media_type,
        "Docker-Content-Digest": result.digest,
        "Content-Length": str(result.size),
        "ETag": f'"{result.digest}"',
        "X-Cache": result.cache,
    }
    body = result.content if request.method == "GET" else b""
    if request.method == "GET":
        source = "upstream" if result.cache == "MISS" else "cache"
        metrics.bytes_served.labels(source).inc(result.size)
        runtime.statistics.add(pull.group.id, **{f"bytes_from_{source}": result.size})
    return Response(body, headers=headers, media_type=None)


def _blob_headers(digest: str, size: int | None, cache: str) -> dict[str, str]:
    headers = {
        **API_VERSION_HEADER,
        "Docker-Content-Digest": digest,
        "ETag": f'"{digest}"',
        "X-Cache": cache,
        "Cache-Control": "max-age=31536000, immutable",
    }
    if size is not None:
        headers["Content-Length"] = str(size)
    return headers


async def _blob(
    request: Request, runtime: Runtime, pull: PullContext, reference: Reference
) -> Response:
    if request.method == "HEAD":
        info = await head_blob(runtime, pull, reference.image, reference.reference)
        return Response(
            b"",
            headers=_blob_headers(info.digest, info.size, "HIT"),
            media_type="application/octet-stream",
        )
    blob = await get_blob(runtime, pull, reference.image, reference.reference)
    if isinstance(blob, StoredBlob):
        headers = _blob_headers(blob.digest, None, "HIT")
        response = BlobFileResponse(
            blob.path, headers=headers, media_type="application/octet-stream"
        )
        runtime.statistics.add(pull.group.id, bytes_from_cache=blob.size)
        metrics.bytes_served.labels("cache").inc(blob.size)
        return response
    return _streaming(runtime, pull, blob)


def _streaming(runtime: Runtime, pull: PullContext, blob: StreamingBlob) -> Response:
    group_id = pull.group.id

    async def body() -> AsyncIterator[bytes]:
        sent = 0
        try:
            async for chunk in blob.reader:
                sent += len(chunk)
                yield chunk
            await blob.delivered(sent)
        except DownloadFailed as error:
            # Raising aborts the connection: the client sees a short body,
            # never a complete-looking wrong blob.
            log.warning("blob %s download failed mid-stream: %s", blob.digest, error.message)
            raise
        finally:
            await blob.reader.aclose()
            runtime.statistics.add(group_id, bytes_from_upstream=sent)
            metrics.bytes_served.labels("upstream").inc(sent)

    return StreamingResponse(
        body(),
        headers=_blob_headers(blob.digest, blob.size, "MISS"),
        media_type="application/octet-stream",
    )


routes: list[BaseRoute] = [
    Route("/jwt/auth", token_endpoint, methods=["GET", "POST"]),
    Route("/v2/", v2_root, methods=["GET", "HEAD"]),
    Route("/v2", v2_root, methods=["GET", "HEAD"]),
    Route(
        "/v2/{path:path}",
        v2_dispatch,
        methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
    ),
]
