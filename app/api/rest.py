"""GitLab's REST purge endpoint, so existing scripts keep working:
`DELETE /api/v4/groups/:id/dependency_proxy/cache` → 202 with an empty body.

`:id` is the group's number or its URL-encoded full path. Authentication is a
personal or group access token with scope `api` (`PRIVATE-TOKEN` header or
Bearer; `app.identity` never takes the session cookie here).
Clearing only marks rows (a large cache in the background, as GitLab's worker
does); the cleanup worker deletes them.
"""

from __future__ import annotations

from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.accounts.principal import Principal
from app.dependency_proxy.services.clear_cache import clear_cache
from app.errors import NotFound, PermissionDenied
from app.groups import services as groups
from app.groups.models import Group
from app.identity import principal_of


def _unauthorized() -> Response:
    return JSONResponse({"message": "401 Unauthorized"}, status_code=401)


def _group_not_found() -> Response:
    return JSONResponse({"message": "404 Group Not Found"}, status_code=404)


async def _find_group(principal: Principal, ident: str) -> Group:
    if ident.isdigit():
        return await groups.find_readable_group_by_id(principal, int(ident))
    return await groups.find_readable_group(principal, unquote(ident))


async def purge_dependency_proxy_cache(request: Request) -> Response:
    principal = principal_of(request)
    if principal is None:
        return _unauthorized()
    runtime = getattr(request.app.state, "runtime", None)
    try:
        # Starlette matches the decoded path: an encoded full path arrives with its slashes.
        group = await _find_group(principal, request.path_params["ident"])
        await clear_cache(
            principal, group, background=runtime.background if runtime is not None else None
        )
    except (NotFound, PermissionDenied):
        # Never tell a stranger the group exists (GitLab answers 403 to members
        # without Owner; 404 reveals less and scripts treat both as failure).
        return _group_not_found()
    return Response(status_code=202)


routes: list[BaseRoute] = [
    Route(
        "/api/v4/groups/{ident:path}/dependency_proxy/cache",
        purge_dependency_proxy_cache,
        methods=["DELETE"],
    )
]
