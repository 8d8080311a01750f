"""HTTP routes of the API surface: /api/graphql, the GraphiQL explorer, GitLab's REST
cache purge and /metrics (app.asgi mounts `routes`)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http.ides import get_graphql_ide_html

from app.accounts.sessions import csrf_token
from app.gql.auth import InsufficientScope, InvalidToken, api_principal
from app.gql.context import Context
from app.gql.schema import schema
from app.metrics import routes as metrics_routes

PRINCIPAL_STATE = "graphql_principal"


class DockyardGraphQL(GraphQL[Context, None]):
    async def get_context(self, request: Any, response: Any) -> Context:
        app = request.app
        return Context(
            request=request,
            response=response,
            principal=request.scope["state"][PRINCIPAL_STATE],
            settings=app.state.settings,
            runtime=getattr(app.state, "runtime", None),
        )


_graphql = DockyardGraphQL(schema, graphql_ide=None, allow_queries_via_get=True)


class GraphQLEndpoint:
    """An ASGI app (a class, so Starlette does not wrap it as a request handler) that
    authenticates first, so a bad token is a plain 401 as on GitLab."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            principal = await api_principal(request)
        except InvalidToken:
            response: Response = JSONResponse({"errors": [{"message": "Invalid token"}]}, 401)
            await response(scope, receive, send)
            return
        except InsufficientScope:
            response = JSONResponse({"errors": [{"message": "insufficient_scope"}]}, 403)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL_STATE] = principal
        await _graphql(scope, receive, send)


# Strawberry's GraphiQL page, pointed at /api/graphql and sending our CSRF header,
# so a signed-in user can explore with their session.
_EXPLORER_FETCH_URL = 'const fetchURL = window.location.href.split("?")[0];'
_EXPLORER_CSRF = 'const csrfToken = Cookies.get("csrftoken");'
_EXPLORER_CSRF_HEADER = 'defaultHeaders["x-csrftoken"] = csrfToken;'


def explorer_html(token: str) -> str:
    html = get_graphql_ide_html("graphiql")
    for needle in (_EXPLORER_FETCH_URL, _EXPLORER_CSRF, _EXPLORER_CSRF_HEADER):
        if needle not in html:  # a Strawberry upgrade changed the page: fail loudly in tests
            raise RuntimeError(f"GraphiQL template changed: {needle!r} not found")
    return (
        html.replace(_EXPLORER_FETCH_URL, 'const fetchURL = new URL("/api/graphql", location);')
        .replace(_EXPLORER_CSRF, f"const csrfToken = {json.dumps(token)};")
        .replace(_EXPLORER_CSRF_HEADER, 'defaultHeaders["X-CSRF-Token"] = csrfToken;')
    )


async def graphql_explorer(request: Request) -> Response:
    token = csrf_token(request.session) if "session" in request.scope else ""
    return HTMLResponse(explorer_html(token), headers={"Cache-Control": "no-store"})


routes: list[BaseRoute] = [
    Route("/api/graphql", GraphQLEndpoint(), methods=["GET", "POST"]),
    Route("/-/graphql-explorer", graphql_explorer, methods=["GET"]),
    # Not GraphQL, but app.asgi mounts only this list of ours; /metrics is core.
    *metrics_routes,
]
