"""Routes of the HTTP API surface: GraphQL, GitLab's REST purge and the Prometheus
metrics (`app.asgi` mounts `routes`)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from app.api import graphql, metrics, rest

routes: list[BaseRoute] = [*graphql.routes, *rest.routes, *metrics.routes]
