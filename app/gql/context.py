"""The typed per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strawberry.types import Info as StrawberryInfo

from app.accounts.principal import Principal
from app.config import Settings

if TYPE_CHECKING:
    from app.gql.loaders import Loaders
    from app.runtime import Runtime


@dataclass
class Context:
    request: Any  # starlette Request (kept untyped so services never need starlette)
    response: Any
    principal: Principal | None
    settings: Settings
    runtime: Runtime | None
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        from app.gql.loaders import Loaders

        # Built per request, so nothing cached leaks between principals.
        self.loaders = Loaders(self)

    @property
    def viewer(self) -> Principal:
        """The principal, or an anonymous one that no policy lets through."""
        return self.principal or ANONYMOUS


ANONYMOUS = Principal(scopes=frozenset())

Info = StrawberryInfo[Context, None]
