"""Web page routes (filled in by the web issue)."""

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
