"""The schema: composes the Query root and one field per mutation module, plus limits."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from app.gql.mutations.clear_dependency_proxy_cache import clear_dependency_proxy_cache_mutation
from app.gql.mutations.create_dependency_proxy_warm_job import (
    create_dependency_proxy_warm_job_mutation,
)
from app.gql.mutations.dependency_proxy_upstream_create import (
    dependency_proxy_upstream_create_mutation,
)
from app.gql.mutations.dependency_proxy_upstream_delete import (
    dependency_proxy_upstream_delete_mutation,
)
from app.gql.mutations.destroy_dependency_proxy_manifest import (
    destroy_dependency_proxy_manifest_mutation,
)
from app.gql.mutations.group_access_token_create import group_access_token_create_mutation
from app.gql.mutations.group_access_token_revoke import group_access_token_revoke_mutation
from app.gql.mutations.group_create import group_create_mutation
from app.gql.mutations.group_member_add import group_member_add_mutation
from app.gql.mutations.group_member_remove import group_member_remove_mutation
from app.gql.mutations.group_member_update import group_member_update_mutation
from app.gql.mutations.personal_access_token_rotate import personal_access_token_rotate_mutation
from app.gql.mutations.update_dependency_proxy_image_ttl_group_policy import (
    update_dependency_proxy_image_ttl_group_policy_mutation,
)
from app.gql.mutations.update_dependency_proxy_manifest import (
    update_dependency_proxy_manifest_mutation,
)
from app.gql.mutations.update_dependency_proxy_settings import (
    update_dependency_proxy_settings_mutation,
)
from app.gql.queries import Query
from app.gql.scalars import SCALAR_MAP

# Deep enough for every operation in graphql/operations/, shallow enough that
# one request cannot walk the whole database.
MAX_QUERY_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 5000


def _mutation(resolver: object, description: str) -> object:
    # No permission class: every mutation calls a service that checks the policy.
    return strawberry.mutation(  # type: ignore[call-overload]
        resolver=resolver, description=description
    )


@strawberry.type
class Mutation:
    update_dependency_proxy_settings = _mutation(
        update_dependency_proxy_settings_mutation,
        "Change a group's Dependency Proxy setting (Owner).",
    )
    update_dependency_proxy_image_ttl_group_policy = _mutation(
        update_dependency_proxy_image_ttl_group_policy_mutation,
        "Change a group's image TTL policy (Owner).",
    )
    clear_dependency_proxy_cache = _mutation(
        clear_dependency_proxy_cache_mutation,
        "Dockyard: schedule every cached manifest and blob of a group for deletion (Owner).",
    )
    destroy_dependency_proxy_manifest = _mutation(
        destroy_dependency_proxy_manifest_mutation,
        "Dockyard: delete one cached manifest; its blobs go when nothing else needs them (Owner).",
    )
    update_dependency_proxy_manifest = _mutation(
        update_dependency_proxy_manifest_mutation,
        "Dockyard: pin or unpin a cached image; pinned images never expire (Owner).",
    )
    create_dependency_proxy_warm_job = _mutation(
        create_dependency_proxy_warm_job_mutation,
        "Dockyard: pull images into a group's cache ahead of a rollout (Owner, Maintainer).",
    )
    dependency_proxy_upstream_create = _mutation(
        dependency_proxy_upstream_create_mutation,
        "Dockyard: add an upstream registry to a group's list (Owner).",
    )
    dependency_proxy_upstream_delete = _mutation(
        dependency_proxy_upstream_delete_mutation,
        "Dockyard: remove an upstream registry from a group's own list (Owner).",
    )
    group_create = _mutation(group_create_mutation, "Dockyard: create a group or subgroup.")
    group_member_add = _mutation(group_member_add_mutation, "Dockyard: add a member (Owner).")
    group_member_update = _mutation(
        group_member_update_mutation, "Dockyard: change a member's role (Owner)."
    )
    group_member_remove = _mutation(
        group_member_remove_mutation, "Dockyard: remove a direct member (Owner)."
    )
    personal_access_token_rotate = _mutation(
        personal_access_token_rotate_mutation, "Rotate a specified personal access token."
    )
    group_access_token_create = _mutation(
        group_access_token_create_mutation,
        "Dockyard: create a group access token (Owner); its secret is shown once.",
    )
    group_access_token_revoke = _mutation(
        group_access_token_revoke_mutation, "Dockyard: revoke a group access token (Owner)."
    )


def _should_mask(error: GraphQLError) -> bool:
    """Only errors we raise on purpose reach clients; anything else is masked."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


class DockyardSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Refusals and invalid arguments are answers, not incidents: log only the rest.
        unexpected = [error for error in errors if _should_mask(error)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


schema = DockyardSchema(
    query=Query,
    mutation=Mutation,
    config=StrawberryConfig(scalar_map=SCALAR_MAP),  # type: ignore[arg-type]
    extensions=[
        # Factories: a fresh extension per request.
        lambda: QueryDepthLimiter(max_depth=MAX_QUERY_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: MaskErrors(should_mask_error=_should_mask, error_message="Internal server error"),
    ],
)


def sdl() -> str:
    """The schema in SDL, as committed in graphql/schema.graphql."""
    return schema.as_str() + "\n"
