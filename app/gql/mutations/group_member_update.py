"""groupMemberUpdate: change a direct member's role (Owner only)."""

from __future__ import annotations

import strawberry

from app.gql.context import Info
from app.gql.mutations.group_member_add import (
    GroupMemberAddInput,
    GroupMemberAddPayload,
    set_member,
)


@strawberry.input
class GroupMemberUpdateInput(GroupMemberAddInput):
    pass


@strawberry.type
class GroupMemberUpdatePayload(GroupMemberAddPayload):
    pass


async def group_member_update_mutation(
    info: Info, input: GroupMemberUpdateInput
) -> GroupMemberUpdatePayload | None:
    payload = await set_member(info, input, existing_only=True)
    return GroupMemberUpdatePayload(
        client_mutation_id=payload.client_mutation_id,
        errors=payload.errors,
        group_member=payload.group_member,
    )
