"""`/api/graphql`: the HTTP side of the GraphQL API (the schema is `app.gql`).

The request arrives authenticated (`app.identity`); this endpoint only says no
the way GitLab does: a token that stands for no one is 401, one without an API
scope 403, both as GraphQL errors. Strawberry's own refusals (a mutation sent
by GET, a body that is not GraphQL) are GraphQL errors too, never plain text.
"""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException  # what Strawberry raises for a refused HTTP request
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from app.gql.context import Context
from app.gql.schema import schema
from app.identity import Failure, identity_of

GET_MUTATION_MESSAGE = "mutations are not allowed in GET requests: send them with POST"


def graphql_error(message: str, status_code: int) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message}]}, status_code=status_code)


class DockyardGraphQL(GraphQL[Context, None]):
    async def get_context(self, request: Any, response: Any) -> Context:
        app = request.app
        return Context(
            request=request,
            response=response,
            principal=identity_of(request).principal,
            settings=app.state.settings,
            runtime=getattr(app.state, "runtime", None),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self.run(request)
        except HTTPException as error:
            message = error.reason
            if "mutations are not allowed" in message.lower():
                message = GET_MUTATION_MESSAGE
            response = graphql_error(message, error.status_code)
        await response(scope, receive, send)


_graphql = DockyardGraphQL(schema, graphql_ide=None, allow_queries_via_get=True)


class GraphQLEndpoint:
    """An ASGI app (a class, so Starlette does not wrap it as a request handler) that
    answers a credential that cannot be used before GraphQL runs, as GitLab does."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        failure = identity_of(Request(scope)).failure
        if failure is Failure.INVALID_TOKEN:
            await graphql_error("Invalid token", 401)(scope, receive, send)
            return
        if failure is Failure.INSUFFICIENT_SCOPE:
            await graphql_error("insufficient_scope", 403)(scope, receive, send)
            return
        await _graphql(scope, receive, send)


routes: list[BaseRoute] = [Route("/api/graphql", GraphQLEndpoint(), methods=["GET", "POST"])]
