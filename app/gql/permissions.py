"""The one message unauthorised requests get (GitLab's wording), and its error.

The message never says whether the thing exists, so a stranger cannot probe
for private group paths. When the principal would be allowed but its token's
scope is what is missing (a `read_api` token asking for a mutation), the error
says so in `extensions` (GitLab's message stays, so scripts that match it work).
"""

from __future__ import annotations

from graphql import GraphQLError

RESOURCE_NOT_AVAILABLE = (
    "The resource that you are attempting to access does not exist "
    "or you don't have permission to perform this action"
)


class ResourceNotAvailable(GraphQLError):
    def __init__(self, reason: str | None = None) -> None:
        extensions = {"code": "INSUFFICIENT_SCOPE", "reason": reason} if reason else None
        super().__init__(RESOURCE_NOT_AVAILABLE, extensions=extensions)
