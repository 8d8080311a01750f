"""OCI error envelopes, and the translation of domain errors into them."""

from __future__ import annotations

from starlette.responses import JSONResponse

from app.dependency_proxy import errors as proxy
from app.errors import DockyardError, InvalidInput, NotFound, PermissionDenied

API_VERSION_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}


def oci_error(
    status: int,
    code: str,
    message: str,
    detail: object = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"errors": [{"code": code, "message": message, "detail": detail}]}
    return JSONResponse(body, status_code=status, headers={**API_VERSION_HEADER, **(headers or {})})


INVALID_CODES = {
    "name": "NAME_INVALID",
    "tag": "TAG_INVALID",
    "digest": "DIGEST_INVALID",
    "pagination": "PAGINATION_NUMBER_INVALID",  # distribution's code for a bad `n`
}


_UNKNOWN_CODES = {"blobs": "BLOB_UNKNOWN", "tags": "NAME_UNKNOWN"}


def _code_for(error: DockyardError, kind: str) -> tuple[int, str]:
    unknown = _UNKNOWN_CODES.get(kind, "MANIFEST_UNKNOWN")
    match error:
        case proxy.InvalidReference(part="reference"):
            # Neither a tag nor a digest: no manifest can have that name (the CNCF
            # registry answers the same 404).
            return 404, "MANIFEST_UNKNOWN"
        case proxy.InvalidReference():
            return 400, INVALID_CODES.get(error.part, "NAME_INVALID")
        case proxy.ManifestUnknown() | proxy.BlobUnknown():
            return 404, unknown
        case NotFound():
            return 404, "NAME_UNKNOWN"
        case proxy.ProxyDisabled() | PermissionDenied():
            return 403, "DENIED"
        case proxy.TooLarge():
            return (413, "SIZE_INVALID") if kind == "blobs" else (502, "MANIFEST_INVALID")
        case proxy.DigestMismatch():
            return 502, "DIGEST_INVALID"
        case proxy.UpstreamRateLimited():
            return 429, "TOOMANYREQUESTS"
        case proxy.UpstreamDenied():
            return 403, "DENIED"
        case proxy.UpstreamUnavailable() | proxy.DownloadFailed():
            return 503, "UNAVAILABLE"
        case InvalidInput():
            return 400, "NAME_INVALID"
    return 500, "UNKNOWN"


def error_response(error: DockyardError, kind: str = "manifests") -> JSONResponse:
    status, code = _code_for(error, kind)
    headers = {}
    if isinstance(error, proxy.UpstreamRateLimited) and error.retry_after:
        headers["Retry-After"] = str(error.retry_after)
    return oci_error(status, code, error.message, headers=headers)
