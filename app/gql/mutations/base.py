"""What every mutation shares: finding the group, and turning service errors into
GitLab's answers (unauthorised: a top-level error; rule broken: payload `errors`).

Mutations check nothing themselves: the services they call decide.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from app.errors import AlreadyExists, InsufficientScope, InvalidInput, NotFound, PermissionDenied
from app.gql.context import Info
from app.gql.permissions import ResourceNotAvailable
from app.groups import services as groups
from app.groups.models import Group

T = TypeVar("T")


async def group_for(info: Info, group_path: str) -> Group:
    """The group if the viewer may see it; otherwise the one unauthorised error."""
    return await refused_as_unavailable(groups.find_readable_group(info.context.viewer, group_path))


async def refused_as_unavailable(work: Awaitable[T]) -> T:
    """A refusal (or a thing one may not know of) becomes GitLab's top-level error."""
    try:
        return await work
    except InsufficientScope as error:
        raise ResourceNotAvailable(error.message) from None
    except (NotFound, PermissionDenied):
        raise ResourceNotAvailable() from None


async def attempt(work: Awaitable[T]) -> tuple[T | None, list[str]]:
    """Run a service call: (result, []) or (None, [message]); refusals raise."""
    try:
        return await refused_as_unavailable(work), []
    except (InvalidInput, AlreadyExists) as error:
        return None, [error.message]
