"""groupMemberRemove: remove a direct member (Owner only; the last Owner stays)."""

from __future__ import annotations

import strawberry

from app.gql.context import Info
from app.gql.mutations.base import attempt, group_for
from app.groups import services as groups


@strawberry.input
class GroupMemberRemoveInput:
    client_mutation_id: str | None = None
    group_path: strawberry.ID
    username: str


@strawberry.type
class GroupMemberRemovePayload:
    client_mutation_id: str | None
    errors: list[str]


async def group_member_remove_mutation(
    info: Info, input: GroupMemberRemoveInput
) -> GroupMemberRemovePayload | None:
    group = await group_for(info, str(input.group_path))
    _, errors = await attempt(groups.remove_member(info.context.viewer, group, input.username))
    return GroupMemberRemovePayload(client_mutation_id=input.client_mutation_id, errors=errors)
