"""groupAccessTokenCreate: Dockyard's (GitLab has `POST /groups/:id/access_tokens` only).

A token acting as a bot member of the group with `accessLevel` (not above your
own), for its group and subgroups only. The secret is in `token`, once.
"""

from __future__ import annotations

import strawberry

from app.gql.context import Info
from app.gql.mutations.base import attempt, group_for
from app.gql.scalars import Date
from app.gql.users import AccessLevelEnum, GroupAccessToken
from app.groups.access_tokens import create_group_access_token


@strawberry.input
class GroupAccessTokenCreateInput:
    client_mutation_id: str | None = None
    group_path: strawberry.ID
    name: str
    access_level: AccessLevelEnum
    scopes: list[str] = strawberry.field(
        description="api, read_api, read_registry, write_registry."
    )
    expires_at: Date | None = None


@strawberry.type
class GroupAccessTokenCreatePayload:
    client_mutation_id: str | None
    errors: list[str]
    token: str | None = strawberry.field(description="The token's secret, shown once.")
    group_access_token: GroupAccessToken | None


async def group_access_token_create_mutation(
    info: Info, input: GroupAccessTokenCreateInput
) -> GroupAccessTokenCreatePayload | None:
    group = await group_for(info, str(input.group_path))
    created, errors = await attempt(
        create_group_access_token(
            info.context.viewer,
            group,
            input.name,
            input.access_level.level,
            input.scopes,
            input.expires_at,
        )
    )
    return GroupAccessTokenCreatePayload(
        client_mutation_id=input.client_mutation_id,
        errors=errors,
        token=created.secret if created else None,
        group_access_token=GroupAccessToken.of(created.group_access_token) if created else None,
    )
