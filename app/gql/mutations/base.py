"""What every mutation shares: finding the group, and turning service errors into
GitLab's answers (unauthorised: a top-level error; rule broken: payload `errors`)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from app.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from app.gql.context import Info
from app.gql.permissions import ResourceNotAvailable
from app.gql.queries import visible_group
from app.groups import policy
from app.groups.models import Group

T = TypeVar("T")


async def group_for(info: Info, group_path: str) -> Group:
    """The group if the viewer may see it; otherwise the one unauthorised error."""
    group = await visible_group(info.context.viewer, group_path)
    if group is None:
        raise ResourceNotAvailable()
    return group


async def require_owner(info: Info, group: Group) -> None:
    if not await policy.can_administer(info.context.viewer, group):
        raise ResourceNotAvailable()


async def attempt(work: Awaitable[T], *, owner_checked: bool = False) -> tuple[T | None, list[str]]:
    """Run a service call: (result, []) or (None, [message]); permission failures raise.

    Once the caller has proven the viewer is an Owner (`owner_checked`), a
    NotFound (an unknown user, say) is a mistake to report, not a secret to keep.
    """
    try:
        return await work, []
    except NotFound as error:
        if owner_checked:
            return None, [error.message]
        raise ResourceNotAvailable() from None
    except PermissionDenied:
        raise ResourceNotAvailable() from None
    except (InvalidInput, AlreadyExists) as error:
        return None, [error.message]
