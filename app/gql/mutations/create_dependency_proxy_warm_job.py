"""createDependencyProxyWarmJob: Dockyard's (GitLab has no pre-warm).

Queues a job that pulls the images into the group's cache through its
upstreams, as a client pull would; the server's worker runs it and
`Group.dependencyProxyWarmJobs` shows its progress. Owners and Maintainers
(the service decides); a request that could not succeed is a payload error.
"""

from __future__ import annotations

import strawberry

from app.dependency_proxy.services.start_warm_job import start_warm_job
from app.gql.context import Info
from app.gql.mutations.base import attempt
from app.gql.warm_jobs import DependencyProxyWarmJob


@strawberry.input
class CreateDependencyProxyWarmJobInput:
    client_mutation_id: str | None = None
    group_path: strawberry.ID
    images: list[str] = strawberry.field(
        description="`image`, `image:tag` or `image@digest`, as a client would pull them."
    )
    platforms: list[str] | None = strawberry.field(
        default=None,
        description="os/architecture[/variant] to fetch from an index (default linux/amd64).",
    )
    all_platforms: bool = strawberry.field(
        default=False, description="Fetch every platform of an index."
    )


@strawberry.type
class CreateDependencyProxyWarmJobPayload:
    client_mutation_id: str | None
    errors: list[str]
    warm_job: DependencyProxyWarmJob | None


async def create_dependency_proxy_warm_job_mutation(
    info: Info, input: CreateDependencyProxyWarmJobInput
) -> CreateDependencyProxyWarmJobPayload | None:
    view, errors = await attempt(
        start_warm_job(
            info.context.viewer,
            info.context.settings,
            str(input.group_path),
            input.images,
            platforms=input.platforms or (),
            all_platforms=input.all_platforms,
        )
    )
    return CreateDependencyProxyWarmJobPayload(
        client_mutation_id=input.client_mutation_id,
        errors=errors,
        warm_job=DependencyProxyWarmJob.of(view) if view else None,
    )
