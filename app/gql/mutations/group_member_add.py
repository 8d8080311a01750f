"""groupMemberAdd and groupMemberUpdate: give a user a role in a group (Owner only)."""

from __future__ import annotations

import strawberry

from app.gql.context import Info
from app.gql.mutations.base import attempt, group_for, require_owner
from app.gql.types import AccessLevelEnum, AccessLevelType, GroupMember, UserCore
from app.groups import administration


@strawberry.input
class GroupMemberAddInput:
    client_mutation_id: str | None = None
    group_path: strawberry.ID
    username: str
    access_level: AccessLevelEnum


@strawberry.type
class GroupMemberAddPayload:
    client_mutation_id: str | None
    errors: list[str]
    group_member: GroupMember | None


async def set_member(info: Info, input: GroupMemberAddInput) -> GroupMemberAddPayload:
    group = await group_for(info, str(input.group_path))
    await require_owner(info, group)
    membership, errors = await attempt(
        administration.set_member(
            info.context.viewer, group, input.username, input.access_level.value
        ),
        owner_checked=True,
    )
    member = None
    if membership is not None:
        await membership.fetch_related("user")
        member = GroupMember(
            user=UserCore(model=membership.user),
            access_level=AccessLevelType.of(membership.access_level),
            inherited=False,
        )
    return GroupMemberAddPayload(
        client_mutation_id=input.client_mutation_id, errors=errors, group_member=member
    )


async def group_member_add_mutation(
    info: Info, input: GroupMemberAddInput
) -> GroupMemberAddPayload | None:
    return await set_member(info, input)
