"""groupMemberUpdate: change a direct member's role (Owner only)."""

from __future__ import annotations

import strawberry

from app.accounts import services as accounts
from app.gql.context import Info
from app.gql.mutations.base import group_for, require_owner
from app.gql.mutations.group_member_add import (
    GroupMemberAddInput,
    GroupMemberAddPayload,
    set_member,
)
from app.groups.models import Membership


@strawberry.input
class GroupMemberUpdateInput(GroupMemberAddInput):
    pass


@strawberry.type
class GroupMemberUpdatePayload(GroupMemberAddPayload):
    pass


async def group_member_update_mutation(
    info: Info, input: GroupMemberUpdateInput
) -> GroupMemberUpdatePayload | None:
    group = await group_for(info, str(input.group_path))
    await require_owner(info, group)
    user = await accounts.find_user(input.username)
    if user is None or not await Membership.exists(group_id=group.id, user_id=user.id):
        return GroupMemberUpdatePayload(
            client_mutation_id=input.client_mutation_id,
            errors=[f"{input.username} is not a direct member of {group.full_path}"],
            group_member=None,
        )
    payload = await set_member(info, input)
    return GroupMemberUpdatePayload(
        client_mutation_id=payload.client_mutation_id,
        errors=payload.errors,
        group_member=payload.group_member,
    )
