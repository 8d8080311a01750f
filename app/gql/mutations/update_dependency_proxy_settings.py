"""updateDependencyProxySettings: GitLab's mutation, plus Dockyard's revalidationInterval."""

from __future__ import annotations

import strawberry

from app.dependency_proxy.services.update_settings import update_dependency_proxy_settings
from app.dependency_proxy.upstream_lists import docker_hub_identity
from app.gql.context import Info
from app.gql.mutations.base import attempt, group_for
from app.gql.scalars import BigInt
from app.gql.types import DependencyProxySetting


@strawberry.input
class UpdateDependencyProxySettingsInput:
    client_mutation_id: str | None = None
    group_path: strawberry.ID
    enabled: bool | None = None
    identity: str | None = None
    secret: str | None = strawberry.field(
        default=None,
        description="Never readable back. Either may be changed alone while the other is "
        "stored; two empty strings clear both.",
    )
    revalidation_interval: int | None = strawberry.field(
        default=None, description="Dockyard: seconds a cached tag is served without a HEAD."
    )
    size_limit_bytes: BigInt | None = strawberry.field(
        default=strawberry.UNSET,
        description="Dockyard: the most the group's cache may hold, in bytes (at least "
        "1 MiB); null removes the limit, leaving it out keeps it.",
    )


@strawberry.type
class UpdateDependencyProxySettingsPayload:
    client_mutation_id: str | None
    errors: list[str]
    dependency_proxy_setting: DependencyProxySetting | None


def _size_limit(value: object) -> int | None:
    """The new limit; None when the input left it out (UNSET) or removes it (null)."""
    return int(value) if isinstance(value, int) else None


async def update_dependency_proxy_settings_mutation(
    info: Info, input: UpdateDependencyProxySettingsInput
) -> UpdateDependencyProxySettingsPayload | None:
    context = info.context
    group = await group_for(info, str(input.group_path))
    setting, errors = await attempt(
        update_dependency_proxy_settings(
            context.viewer,
            group,
            context.settings,
            enabled=input.enabled,
            identity=input.identity,
            secret=input.secret,
            revalidation_interval=input.revalidation_interval,
            size_limit_bytes=_size_limit(input.size_limit_bytes),
            remove_size_limit=input.size_limit_bytes is None,
        )
    )
    identity = None
    if setting is not None:
        identity, _ = await docker_hub_identity(group, context.settings)
    return UpdateDependencyProxySettingsPayload(
        client_mutation_id=input.client_mutation_id,
        errors=errors,
        dependency_proxy_setting=(
            DependencyProxySetting.of_row(setting, identity) if setting is not None else None
        ),
    )
