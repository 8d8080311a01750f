"""DependencyProxyWarmJob: a pre-warm job and its progress per image, as
`Group.dependencyProxyWarmJobs` and `createDependencyProxyWarmJob` return it."""

from __future__ import annotations

from enum import Enum

import strawberry

from app.accounts.principal import Principal
from app.dependency_proxy.services.find_warm_jobs import find_warm_jobs
from app.dependency_proxy.warm_jobs import WarmImageView, WarmJobView
from app.gql.scalars import BigInt, Time, global_id, id_of
from app.groups.models import Group


@strawberry.enum(name="DependencyProxyWarmJobState")
class WarmJobState(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@strawberry.type(
    name="DependencyProxyWarmJobImage",
    description="Dockyard: one image of a warm job; layers count the config blob too.",
)
class DependencyProxyWarmJobImage:
    image: str = strawberry.field(description="`image:tag` or `image@digest` as requested.")
    state: WarmJobState
    layers_total: int
    layers_done: int
    bytes_total: BigInt
    bytes_done: BigInt
    error_message: str | None = strawberry.field(description="Why the image failed, if it did.")

    @classmethod
    def of(cls, view: WarmImageView) -> DependencyProxyWarmJobImage:
        return cls(
            image=view.image,
            state=WarmJobState(view.state),
            layers_total=view.layers_total,
            layers_done=view.layers_done,
            bytes_total=BigInt(view.bytes_total),
            bytes_done=BigInt(view.bytes_done),
            error_message=view.error,
        )


@strawberry.type(
    name="DependencyProxyWarmJob",
    description="Dockyard: images pulled into a group's cache ahead of a rollout.",
)
class DependencyProxyWarmJob:
    id: strawberry.ID
    state: WarmJobState = strawberry.field(
        description="QUEUED until a worker takes it; FAILED when any image failed."
    )
    platforms: list[str] = strawberry.field(
        description="Platforms fetched from a multi-platform index (empty: all of them)."
    )
    all_platforms: bool
    created_by: str
    created_at: Time
    finished_at: Time | None
    images: list[DependencyProxyWarmJobImage]

    @classmethod
    def of(cls, view: WarmJobView) -> DependencyProxyWarmJob:
        return cls(
            id=strawberry.ID(global_id("DependencyProxy::WarmJob", view.id)),
            state=WarmJobState(view.state),
            platforms=list(view.platforms),
            all_platforms=view.all_platforms,
            created_by=view.created_by,
            created_at=Time(view.created_at),
            finished_at=Time(view.finished_at) if view.finished_at else None,
            images=[DependencyProxyWarmJobImage.of(image) for image in view.images],
        )


async def warm_jobs_of(
    viewer: Principal, group: Group, first: int, ident: strawberry.ID | None
) -> list[DependencyProxyWarmJob]:
    """`Group.dependencyProxyWarmJobs`: the newest jobs, or the one `ident` names."""
    job_id = id_of(str(ident), "DependencyProxy::WarmJob") if ident is not None else None
    if ident is not None and job_id is None:
        return []
    found = await find_warm_jobs(viewer, group, first=first, job_id=job_id)
    return [DependencyProxyWarmJob.of(view) for view in found.jobs]
