"""HTTP routes of the API surface: /api/graphql and /metrics (app.asgi mounts `routes`).

The GraphiQL explorer is a web page (web/graphql_explorer.py)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

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


routes: list[BaseRoute] = [
    Route("/api/graphql", GraphQLEndpoint(), methods=["GET", "POST"]),
    # Not GraphQL, but app.asgi mounts only this list of ours; /metrics is core.
    *metrics_routes,
]
