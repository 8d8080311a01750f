"""groupMemberAdd and groupMemberUpdate: give a user a role in a group (Owner only)."""

from __future__ import annotations

import strawberry

from app.gql.context import Info
from app.gql.mutations.base import attempt, group_for
from app.gql.types import GroupMember
from app.gql.users import AccessLevelEnum
from app.groups import services as groups
from app.groups.models import AccessLevel
from app.groups.services import MemberView


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


async def set_member(
    info: Info, input: GroupMemberAddInput, *, existing_only: bool = False
) -> GroupMemberAddPayload:
    group = await group_for(info, str(input.group_path))
    membership, errors = await attempt(
        groups.set_member(
            info.context.viewer,
            group,
            input.username,
            input.access_level.level,
            existing_only=existing_only,
        )
    )
    member = None
    if membership is not None:
        view = MemberView(
            user=membership.user,
            access_level=AccessLevel(membership.access_level),
            source_group=group,
            inherited=False,
        )
        member = GroupMember(view=view)
    return GroupMemberAddPayload(
        client_mutation_id=input.client_mutation_id, errors=errors, group_member=member
    )


async def group_member_add_mutation(
    info: Info, input: GroupMemberAddInput
) -> GroupMemberAddPayload | None:
    return await set_member(info, input)
