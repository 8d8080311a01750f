"""The Query root: group(fullPath:), groups(search:), currentUser.

A group the viewer may not read is simply null (as on GitLab), so a missing
group and a private one look the same. Resolvers only call services, which
decide who may see what.
"""

from __future__ import annotations

import strawberry

from app.accounts import users
from app.errors import NotFound
from app.gql.connections import Connection, connection
from app.gql.context import Info
from app.gql.types import Group, field_errors
from app.gql.users import CurrentUser
from app.groups import services as groups


@strawberry.type
class Query:
    @strawberry.field(description="Find a group by its full path (null when not visible).")
    async def group(self, info: Info, full_path: strawberry.ID) -> Group | None:
        try:
            found = await groups.find_readable_group(info.context.viewer, str(full_path))
        except NotFound:
            return None
        return Group(model=found)

    @strawberry.field(description="Groups the current user belongs to (every group for admins).")
    async def groups(
        self,
        info: Info,
        search: str | None = None,
        after: str | None = None,
        before: str | None = None,
        first: int | None = None,
        last: int | None = None,
    ) -> Connection[Group]:
        page = await field_errors(
            groups.groups_page(
                info.context.viewer, search, first=first, after=after, last=last, before=before
            )
        )
        return connection(page, Group)

    @strawberry.field(description="Get information about current user.")
    def current_user(self, info: Info) -> CurrentUser | None:
        found = users.current_user(info.context.viewer)
        return CurrentUser(model=found) if found is not None else None
