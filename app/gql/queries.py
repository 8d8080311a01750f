"""The Query root: group(fullPath:), groups(search:), currentUser.

A group the viewer may not read is simply null (as on GitLab), so a missing
group and a private one look the same.
"""

from __future__ import annotations

import strawberry

from app.accounts.principal import Principal
from app.dependency_proxy.services.pagination import paginate
from app.gql.connections import Connection, connection
from app.gql.context import Info
from app.gql.types import Group, UserCore, field_errors
from app.groups import policy
from app.groups import services as groups
from app.groups.models import Group as GroupModel
from app.groups.queries import list_user_groups


async def visible_group(principal: Principal, full_path: str) -> GroupModel | None:
    group = await groups.find_group(full_path)
    if group is None or not await policy.can_read(principal, group):
        return None
    return group


def _may_read_anything(principal: Principal) -> bool:
    user = principal.user
    if user is None or not user.is_active or principal.deploy_token is not None:
        return False
    return principal.has_scope("api") or principal.has_scope("read_api")


@strawberry.type
class Query:
    @strawberry.field(description="Find a group by its full path (null when not visible).")
    async def group(self, info: Info, full_path: strawberry.ID) -> Group | None:
        found = await visible_group(info.context.viewer, str(full_path))
        return Group(model=found) if found is not None else None

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
        viewer = info.context.viewer
        query = GroupModel.all()
        if not _may_read_anything(viewer):
            query = query.filter(id__in=[])
        elif not viewer.is_admin and viewer.user is not None:
            visible = [item.group.id for item in await list_user_groups(viewer.user)]
            query = query.filter(id__in=visible)
        if search:
            query = query.filter(full_path_key__icontains=search.lower())
        page = await field_errors(
            paginate(query, first=first, after=after, last=last, before=before, newest_first=False)
        )
        return connection(page, Group)

    @strawberry.field(description="The user behind the request; null when anonymous.")
    def current_user(self, info: Info) -> UserCore | None:
        principal = info.context.principal
        if principal is None or not _may_read_anything(principal):
            return None
        assert principal.user is not None
        return UserCore(model=principal.user)
