"""Permission classes and the one message unauthorised requests get (GitLab's wording).

The message never says whether the thing exists, so a stranger cannot probe
for private group paths.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.permission import BasePermission

from app.gql.context import Info

RESOURCE_NOT_AVAILABLE = (
    "The resource that you are attempting to access does not exist "
    "or you don't have permission to perform this action"
)


class ResourceNotAvailable(GraphQLError):
    def __init__(self) -> None:
        super().__init__(RESOURCE_NOT_AVAILABLE)


class CanMutate(BasePermission):
    """Mutations need a signed-in user with the `api` scope (`read_api` is read-only)."""

    message = RESOURCE_NOT_AVAILABLE

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        return (
            principal is not None
            and principal.user is not None
            and principal.user.is_active
            and principal.has_scope("api")
        )
