"""A group's pre-warm jobs and their progress, for anyone who may read the group;
whether a principal may start one (Owners and Maintainers: `policy.can_maintain`)."""

from __future__ import annotations

from app.accounts.principal import Principal
from app.dependency_proxy import warm_jobs
from app.dependency_proxy.models import WarmJob
from app.dependency_proxy.warm_jobs import WarmJobView
from app.errors import NotFound
from app.groups import policy
from app.groups.models import Group
from app.groups.services import find_readable_group

MAX_JOBS = 100


async def find_warm_jobs(
    principal: Principal, group_path: str, *, first: int = 20, job_id: int | None = None
) -> list[WarmJobView]:
    """The group's newest jobs (at most `first`), or only `job_id` (NotFound when the
    group has no such job: another group's job id tells nothing)."""
    group = await find_readable_group(principal, group_path)
    query = WarmJob.filter(group_id=group.id)
    if job_id is not None:
        query = query.filter(id=job_id)
    jobs = await query.order_by("-id").limit(max(1, min(first, MAX_JOBS)))
    if job_id is not None and not jobs:
        raise NotFound(f"no warm job {job_id} in {group.full_path}")
    return [await warm_jobs.view_of(job, group.full_path) for job in jobs]


async def may_start_warm_job(principal: Principal, group: Group) -> bool:
    """Whether pages should offer the warm form (the start itself checks again)."""
    return await policy.can_maintain(principal, group)
