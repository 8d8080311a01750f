"""GraphQL routes (filled in by the GraphQL issue)."""

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
