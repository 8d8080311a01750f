"""updateDependencyProxyImageTtlGroupPolicy: GitLab's mutation for automatic cleanup."""

from __future__ import annotations

import strawberry

from app.dependency_proxy.services.update_ttl_policy import update_image_ttl_policy
from app.gql.context import Info
from app.gql.mutations.base import attempt, group_for
from app.gql.types import DependencyProxyImageTtlGroupPolicy


@strawberry.input
class UpdateDependencyProxyImageTtlGroupPolicyInput:
    client_mutation_id: str | None = None
    group_path: strawberry.ID
    enabled: bool | None = None
    ttl: int | None = strawberry.field(
        default=None, description="Days an entry may go unread before it expires."
    )


@strawberry.type
class UpdateDependencyProxyImageTtlGroupPolicyPayload:
    client_mutation_id: str | None
    errors: list[str]
    dependency_proxy_image_ttl_policy: DependencyProxyImageTtlGroupPolicy | None


async def update_dependency_proxy_image_ttl_group_policy_mutation(
    info: Info, input: UpdateDependencyProxyImageTtlGroupPolicyInput
) -> UpdateDependencyProxyImageTtlGroupPolicyPayload | None:
    group = await group_for(info, str(input.group_path))
    policy, errors = await attempt(
        update_image_ttl_policy(info.context.viewer, group, enabled=input.enabled, ttl=input.ttl)
    )
    return UpdateDependencyProxyImageTtlGroupPolicyPayload(
        client_mutation_id=input.client_mutation_id,
        errors=errors,
        dependency_proxy_image_ttl_policy=(
            DependencyProxyImageTtlGroupPolicy.of(policy) if policy is not None else None
        ),
    )
