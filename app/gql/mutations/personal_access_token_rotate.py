"""personalAccessTokenRotate: GitLab's mutation. A new secret with the same name and
scopes; the old token stops working at once. Your own token (a web session, or a
token with `api`), or anyone's for administrators."""

from __future__ import annotations

import strawberry

from app.accounts.personal_access_tokens import rotate_personal_access_token
from app.gql.context import Info
from app.gql.mutations.base import attempt
from app.gql.permissions import ResourceNotAvailable
from app.gql.scalars import Date, PersonalAccessTokenID, id_of
from app.gql.users import PersonalAccessToken


@strawberry.input
class PersonalAccessTokenRotateInput:
    client_mutation_id: str | None = None
    id: PersonalAccessTokenID = strawberry.field(
        description="Global ID of the personal access token that will be rotated."
    )
    expires_at: Date | None = strawberry.field(
        default=None, description="Expiration date of the token (default: the old one's)."
    )


@strawberry.type
class PersonalAccessTokenRotatePayload:
    client_mutation_id: str | None
    errors: list[str]
    token: str | None = strawberry.field(description="The new token's secret, shown once.")
    personal_access_token: PersonalAccessToken | None = strawberry.field(
        description="Dockyard: the new token."
    )


async def personal_access_token_rotate_mutation(
    info: Info, input: PersonalAccessTokenRotateInput
) -> PersonalAccessTokenRotatePayload | None:
    token_id = id_of(str(input.id), "PersonalAccessToken")
    if token_id is None:
        raise ResourceNotAvailable()
    created, errors = await attempt(
        rotate_personal_access_token(
            info.context.viewer, token_id=token_id, expires_at=input.expires_at
        )
    )
    return PersonalAccessTokenRotatePayload(
        client_mutation_id=input.client_mutation_id,
        errors=errors,
        token=created.secret if created else None,
        personal_access_token=(
            PersonalAccessToken(model=created.personal_access_token) if created else None
        ),
    )
