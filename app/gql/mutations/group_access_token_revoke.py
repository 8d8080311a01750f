"""groupAccessTokenRevoke: Dockyard's. The token and its bot stop working at once."""

from __future__ import annotations

import strawberry

from app.gql.context import Info
from app.gql.mutations.base import attempt, group_for
from app.gql.scalars import PersonalAccessTokenID, id_of
from app.gql.users import GroupAccessToken
from app.groups.access_tokens import revoke_group_access_token


@strawberry.input
class GroupAccessTokenRevokeInput:
    client_mutation_id: str | None = None
    group_path: strawberry.ID
    id: PersonalAccessTokenID | None = strawberry.field(default=None, description="Or name.")
    name: str | None = None


@strawberry.type
class GroupAccessTokenRevokePayload:
    client_mutation_id: str | None
    errors: list[str]
    group_access_token: GroupAccessToken | None


async def group_access_token_revoke_mutation(
    info: Info, input: GroupAccessTokenRevokeInput
) -> GroupAccessTokenRevokePayload | None:
    group = await group_for(info, str(input.group_path))
    token_id = id_of(str(input.id), "PersonalAccessToken") if input.id is not None else None
    if input.id is not None and token_id is None:
        token_id = -1  # not one of ours: no token has it
    revoked, errors = await attempt(
        revoke_group_access_token(info.context.viewer, group, input.name, token_id=token_id)
    )
    return GroupAccessTokenRevokePayload(
        client_mutation_id=input.client_mutation_id,
        errors=errors,
        group_access_token=GroupAccessToken.of(revoked) if revoked else None,
    )
