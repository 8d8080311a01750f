"""The OCI distribution surface (read-only) at GitLab's URLs.

    GET      /v2/
    GET|POST /jwt/auth
    GET|HEAD /v2/<group>/dependency_proxy/containers/<image>/manifests/<tag|digest>
    GET|HEAD /v2/<group>/dependency_proxy/containers/<image>/blobs/<digest>
    GET|HEAD /v2/<group>/dependency_proxy/containers/<image>/tags/list?n=&last=
    GET|HEAD /v2/<group>/dependency_proxy/containers/<image>/referrers/<digest>?artifactType=

Everything else under /v2/ gets an OCI error. This module only translates:
services decide access and do the work.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.config import Settings
from app.dependency_proxy.cache import PullThroughCache
from app.dependency_proxy.errors import InvalidReference
from app.dependency_proxy.references import Kind, Reference, parse_mirror_path, parse_path
from app.dependency_proxy.services.authorize_pull import PullContext, authorize_pull
from app.dependency_proxy.services.get_blob import get_blob, head_blob
from app.dependency_proxy.services.get_manifest import get_manifest
from app.dependency_proxy.services.get_referrers import get_referrers
from app.dependency_proxy.services.list_tags import list_tags, page_request
from app.errors import DockyardError
from app.identity import principal_of
from registry.auth import challenge, principal_gone, registry_claims
from registry.blob_responses import blob_head_response, blob_response
from registry.errors import API_VERSION_HEADER, error_response, oci_error
from registry.token import token_endpoint

log = logging.getLogger("dockyard.registry")

READ_METHODS = ("GET", "HEAD")


async def v2_root(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    if principal_of(request) is None:
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


def _parse(path: str, settings: Settings) -> Reference:
    """A Dependency Proxy path; in registry-mirror mode also a plain Docker Hub one
    (`library/alpine/manifests/3.19`), answered from the mirror group's cache."""
    try:
        return parse_path(path)
    except InvalidReference as error:
        if error.part != "path" or not settings.mirror_group:
            raise
    return parse_mirror_path(path, settings.mirror_group)


async def v2_dispatch(request: Request) -> Response:
    path: str = request.path_params["path"]
    if request.method not in READ_METHODS:
        return oci_error(
            405, "UNSUPPORTED", "the Dependency Proxy is read-only: pushes are not supported"
        )
    settings: Settings = request.app.state.settings
    try:
        reference = _parse(path, settings)
    except InvalidReference as error:
        if error.part == "path":
            return _not_a_route(path)
        return error_response(error, "manifests")
    scope = f"repository:{reference.repository}:pull"
    claims = registry_claims(request)
    principal = principal_of(request)
    if claims is None:
        return challenge(settings, scope=scope)
    if principal is None or principal_gone(request):
        return challenge(
            settings,
            scope=scope,
            error="invalid_token",
            message="the token was revoked, its owner blocked or their password changed",
        )
    cache: PullThroughCache = request.app.state.cache
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
            return await _manifest(request, cache, pull, reference)
        if reference.kind is Kind.BLOB:
            return await _blob(request, cache, pull, reference)
        if reference.kind is Kind.TAGS:
            return await _tags(request, cache, pull, reference)
        return await _referrers(request, cache, pull, reference)
    except DockyardError as error:
        return error_response(error, reference.kind.value)


async def _manifest(
    request: Request, cache: PullThroughCache, pull: PullContext, reference: Reference
) -> Response:
    sending = request.method == "GET"
    result = await get_manifest(
        cache, pull, reference.image, reference.reference, send_body=sending
    )
    headers = {
        **API_VERSION_HEADER,
        "Content-Type": result.media_type,
        "Docker-Content-Digest": result.digest,
        "Content-Length": str(result.size),
        "ETag": f'"{result.digest}"',
        "X-Cache": result.cache,
    }
    return Response(result.content if sending else b"", headers=headers, media_type=None)


async def _blob(
    request: Request, cache: PullThroughCache, pull: PullContext, reference: Reference
) -> Response:
    if request.method == "HEAD":
        info = await head_blob(cache, pull, reference.image, reference.reference)
        return blob_head_response(request, info)
    body = await get_blob(cache, pull, reference.image, reference.reference)
    return blob_response(request, body)


async def _tags(
    request: Request, cache: PullThroughCache, pull: PullContext, reference: Reference
) -> Response:
    query = request.query_params
    n, last = page_request(query.get("n"), query.get("last"))
    result = await list_tags(cache, pull, reference.image, n=n, last=last)
    body = json.dumps({"name": reference.repository, "tags": list(result.tags)}).encode()
    headers = {
        **API_VERSION_HEADER,
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "X-Cache": result.cache,
    }
    if result.next_last is not None:
        # The next page, on our own path (the upstream's Link names its own).
        following = {"n": str(result.next_n)} if result.next_n is not None else {}
        following["last"] = result.next_last
        headers["Link"] = (
            f'</v2/{reference.repository}/tags/list?{urlencode(following)}>; rel="next"'
        )
    return Response(body if request.method == "GET" else b"", headers=headers, media_type=None)


async def _referrers(
    request: Request, cache: PullThroughCache, pull: PullContext, reference: Reference
) -> Response:
    artifact_type = request.query_params.get("artifactType") or None
    result = await get_referrers(
        cache, pull, reference.image, reference.reference, artifact_type=artifact_type
    )
    headers = {
        **API_VERSION_HEADER,
        "Content-Type": result.media_type,
        "Content-Length": str(len(result.content)),
        "X-Cache": result.cache,
    }
    if result.filters_applied:
        headers["OCI-Filters-Applied"] = result.filters_applied
    body = result.content if request.method == "GET" else b""
    return Response(body, headers=headers, media_type=None)


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
