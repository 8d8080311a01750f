"""A group's pre-warm jobs and their progress, for anyone who may read the group,
and whether the principal may start one (Owners and Maintainers: `policy.can_maintain`)."""

from __future__ import annotations

from dataclasses import dataclass

from app.accounts.principal import Principal
from app.dependency_proxy import warm_jobs
from app.dependency_proxy.models import WarmJob
from app.dependency_proxy.warm_jobs import WarmJobView
from app.errors import NotFound
from app.groups import policy
from app.groups.models import Group
from app.groups.services import find_readable_group

MAX_JOBS = 100


@dataclass(frozen=True)
class WarmJobs:
    may_start: bool  # whether to offer the form (the start itself checks again)
    jobs: list[WarmJobView]  # newest first


async def find_warm_jobs(
    principal: Principal,
    group: Group | str,
    *,
    first: int = 20,
    job_id: int | None = None,
) -> WarmJobs:
    """The group's newest jobs (at most `first`), or only `job_id` (NotFound when the
    group has no such job: another group's job id tells nothing)."""
    if isinstance(group, str):
        group = await find_readable_group(principal, group)
        may_start = await policy.can_maintain(principal, group)
    else:
        # A Maintainer reads the group: one policy look for the page's usual visitor.
        may_start = await policy.can_maintain(principal, group)
        if not may_start:
            await policy.require_read(principal, group)
    query = WarmJob.filter(group_id=group.id)
    if job_id is not None:
        query = query.filter(id=job_id)
    jobs = await query.order_by("-id").limit(max(1, min(first, MAX_JOBS)))
    if job_id is not None and not jobs:
        raise NotFound(f"no warm job {job_id} in {group.full_path}")
    return WarmJobs(may_start, await warm_jobs.views_of(jobs, group.full_path))
