"""Pre-warm jobs as rows: queue, claim, lease, progress (issue 13 point 2).

A job is queued by `services/start_warm_job.py` and run by whoever claims it
(`services/run_warm_job.py`): the background worker of a server, or the
command line for the job it just created. A claim sets `holder` and
`lease_until`; the runner renews the lease while it works. A RUNNING job whose
lease passed belongs to a process that died, and the next claim takes it
over, so a job survives a restart. On PostgreSQL the claim is one statement
whose subquery takes the row `FOR UPDATE SKIP LOCKED` (several instances
never block on, nor both take, one job); SQLite has one writer, and a
conditional update is the claim.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from app import clock
from app.dependency_proxy import sql
from app.dependency_proxy.cached_images import ImageName
from app.dependency_proxy.models import WarmJob, WarmJobImage, WarmState

#: A runner renews its lease every quarter of this; a lease this old is a dead runner's.
LEASE = timedelta(seconds=60)
DEFAULT_PLATFORM = "linux/amd64"
PLATFORM_RE = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")
MAX_IMAGES = 50

_CLAIM_POSTGRES = (
    "UPDATE dependency_proxy_warm_jobs SET state = $1, holder = $2, lease_until = $3, "
    "started_at = COALESCE(started_at, $4) WHERE id = ("
    "SELECT id FROM dependency_proxy_warm_jobs WHERE (state = $5 OR (state = $1 AND "
    "lease_until < $4)) {only} ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id"
)


@dataclass(frozen=True)
class WarmImageView:
    image: str  # image:tag or image@digest
    state: str  # queued, running, done, failed
    layers_total: int
    layers_done: int
    bytes_total: int
    bytes_done: int
    error: str | None


@dataclass(frozen=True)
class WarmJobView:
    id: int
    group_path: str
    state: str
    platforms: tuple[str, ...]  # empty with all_platforms
    all_platforms: bool
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    images: tuple[WarmImageView, ...]

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    def as_dict(self) -> dict[str, object]:
        """What `--json`, the page's progress endpoint and scripts read."""
        return {
            "id": self.id,
            "group": self.group_path,
            "state": self.state,
            "platforms": list(self.platforms),
            "all_platforms": self.all_platforms,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "images": [image.__dict__ for image in self.images],
        }


@dataclass(frozen=True)
class Claim:
    job_id: int
    holder: str


def platforms_of(job: WarmJob) -> tuple[str, ...]:
    return tuple(part for part in job.platforms.split(",") if part)


async def create(
    group_id: int,
    user_id: int | None,
    created_by: str,
    names: list[ImageName],
    platforms: tuple[str, ...],
    all_platforms: bool,
) -> WarmJob:
    async with in_transaction():
        job = await WarmJob.create(
            group_id=group_id,
            user_id=user_id,
            created_by=created_by[:255],
            platforms="" if all_platforms else ",".join(platforms),
            all_platforms=all_platforms,
            created_at=clock.now(),
        )
        await WarmJobImage.bulk_create(
            [
                WarmJobImage(
                    job_id=job.id, position=position, image=name.image, reference=name.reference
                )
                for position, name in enumerate(names)
            ]
        )
    return job


async def claim(job_id: int | None = None) -> Claim | None:
    """Take the oldest queued (or abandoned) job, or only `job_id`; None when there is none."""
    holder = uuid.uuid4().hex
    now = clock.now()
    if not sql.is_sqlite():
        only = "AND id = $6" if job_id is not None else ""
        values: list[object] = [
            int(WarmState.RUNNING),
            holder,
            now + LEASE,
            now,
            int(WarmState.QUEUED),
        ]
        if job_id is not None:
            values.append(job_id)
        rows = await sql.fetch(_CLAIM_POSTGRES.format(only=only), *values)
        return Claim(rows[0]["id"], holder) if rows else None
    claimable = Q(state=WarmState.QUEUED) | Q(state=WarmState.RUNNING, lease_until__lt=now)
    query = WarmJob.filter(claimable)
    if job_id is not None:
        query = query.filter(id=job_id)
    for job in await query.order_by("id").limit(5):
        same = WarmJob.filter(id=job.id, state=job.state)
        # The holder seen is the one replaced: a runner that took it meanwhile wins.
        same = same.filter(holder=job.holder) if job.holder else same.filter(holder__isnull=True)
        taken = await same.update(
            state=WarmState.RUNNING,
            holder=holder,
            lease_until=now + LEASE,
            started_at=job.started_at or now,
        )
        if taken:
            return Claim(job.id, holder)
    return None


async def renew(held: Claim) -> bool:
    """Extend the lease; False when another runner took the job over (stop working on it)."""
    return bool(
        await WarmJob.filter(id=held.job_id, holder=held.holder, state=WarmState.RUNNING).update(
            lease_until=clock.now() + LEASE
        )
    )


async def finish(held: Claim) -> None:
    failed = await WarmJobImage.filter(job_id=held.job_id, state=WarmState.FAILED).exists()
    await WarmJob.filter(id=held.job_id, holder=held.holder).update(
        state=WarmState.FAILED if failed else WarmState.DONE,
        finished_at=clock.now(),
        lease_until=None,
    )


async def view_of(job: WarmJob, group_path: str) -> WarmJobView:
    return (await views_of([job], group_path))[0]


async def views_of(jobs: list[WarmJob], group_path: str) -> list[WarmJobView]:
    """The jobs with their images (one query for all of them)."""
    images: dict[int, list[WarmJobImage]] = {job.id: [] for job in jobs}
    if jobs:
        rows = await WarmJobImage.filter(job_id__in=list(images)).order_by("job_id", "position")
        for row in rows:
            images[row.job_id].append(row)  # type: ignore[attr-defined]
    return [
        WarmJobView(
            id=job.id,
            group_path=group_path,
            state=WarmState(job.state).label,
            platforms=platforms_of(job),
            all_platforms=job.all_platforms,
            created_by=job.created_by,
            created_at=job.created_at,
            finished_at=job.finished_at,
            images=tuple(_image_view(row) for row in images[job.id]),
        )
        for job in jobs
    ]


def _image_view(row: WarmJobImage) -> WarmImageView:
    return WarmImageView(
        image=str(ImageName(row.image, row.reference)),
        state=WarmState(row.state).label,
        layers_total=row.layers_total,
        layers_done=row.layers_done,
        bytes_total=row.bytes_total,
        bytes_done=row.bytes_done,
        error=row.error,
    )
