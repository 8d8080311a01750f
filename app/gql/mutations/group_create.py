"""groupCreate: a top-level group (any user) or a subgroup (Owner of the parent)."""

from __future__ import annotations

import strawberry

from app.gql.context import Info
from app.gql.mutations.base import attempt
from app.gql.types import Group
from app.groups import services as groups


@strawberry.input
class GroupCreateInput:
    client_mutation_id: str | None = None
    path: strawberry.ID = strawberry.field(description="Full path: `acme` or `acme/platform`.")
    name: str | None = None


@strawberry.type
class GroupCreatePayload:
    client_mutation_id: str | None
    errors: list[str]
    group: Group | None


async def group_create_mutation(info: Info, input: GroupCreateInput) -> GroupCreatePayload | None:
    created, errors = await attempt(
        groups.create_group(info.context.viewer, str(input.path), input.name)
    )
    return GroupCreatePayload(
        client_mutation_id=input.client_mutation_id,
        errors=errors,
        group=Group(model=created) if created is not None else None,
    )
