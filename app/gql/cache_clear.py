"""DependencyProxyCacheClear: a cache clear's progress, as `Group.dependencyProxyCacheClear`."""

from __future__ import annotations

from enum import Enum

import strawberry

from app.dependency_proxy.clearing import ClearProgress
from app.gql.scalars import Time


@strawberry.enum(name="DependencyProxyCacheClearStatus")
class CacheClearStatus(Enum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"


@strawberry.type(
    name="DependencyProxyCacheClear",
    description="Dockyard: the group's latest cache clear, marked in chunks.",
)
class DependencyProxyCacheClear:
    status: CacheClearStatus
    marked_count: int = strawberry.field(description="Entries marked for deletion so far.")
    total_count: int = strawberry.field(
        description="Entries the clear marks in all (an estimate while it runs)."
    )
    manifests_marked: int
    blobs_marked: int
    started_at: Time
    finished_at: Time | None

    @classmethod
    def of(cls, progress: ClearProgress) -> DependencyProxyCacheClear:
        return cls(
            status=CacheClearStatus[progress.state.name],
            marked_count=progress.marked_count,
            total_count=progress.total_count,
            manifests_marked=progress.manifests_marked,
            blobs_marked=progress.blobs_marked,
            started_at=Time(progress.started_at),
            finished_at=Time(progress.finished_at) if progress.finished_at else None,
        )
