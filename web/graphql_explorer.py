"""The GraphQL explorer (GraphiQL) at `/-/graphql-explorer`, for signed-in users.

Every asset comes from Dockyard itself (`frontend/vendor/graphiql/`, see its
README), so the explorer works in networks without internet access. The page is
rendered like every other page (`render`: CSP `default-src 'self'`, no framing,
no caching); the session's CSRF token reaches the bootstrap script
(`frontend/graphql_explorer.js`) through the layout's `csrf-token` meta tag,
since the CSP allows no inline script.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.accounts.principal import Principal
from web.guards import signed_in
from web.rendering import render

GRAPHQL_ENDPOINT = "/api/graphql"


@signed_in
async def graphql_explorer(request: Request, principal: Principal) -> Response:
    return render(
        request, "graphql_explorer.html", {"endpoint": GRAPHQL_ENDPOINT}, principal=principal
    )


routes = [Route("/-/graphql-explorer", graphql_explorer, methods=["GET"])]
