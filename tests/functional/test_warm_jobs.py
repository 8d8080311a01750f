"""Pre-warm jobs: who may start one, what is refused, how jobs are claimed, and that a
job whose runner died is taken over (issue 13 point 2). The real pulls are in
tests/e2e/test_cache_warm.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from tortoise.backends.base import executor as base_executor
from tortoise.transactions import in_transaction

from app import clock, db
from app.accounts import records as accounts
from app.accounts.principal import Principal
from app.config import Settings, load_settings
from app.dependency_proxy import warm_jobs
from app.dependency_proxy.cache import PullThroughCache
from app.dependency_proxy.models import WarmJob, WarmJobImage, WarmState
from app.dependency_proxy.services.find_warm_jobs import find_warm_jobs
from app.dependency_proxy.services.run_warm_job import run_warm_job
from app.dependency_proxy.services.start_warm_job import start_warm_job
from app.errors import InsufficientScope, InvalidInput, NotFound, PermissionDenied
from app.groups import records as groups
from app.groups.models import AccessLevel, Group
from tests.support.postgres import PostgresServer

OPERATOR = Principal.operator()


async def member(group: Group, name: str, level: AccessLevel) -> Principal:
    user = await accounts.find_user(name) or await accounts.create_user(
        name, f"{name}@example.com", f"{name}-password"
    )
    await groups.add_member(group, user, level)
    return Principal(user=user)


@pytest.fixture
async def acme(database: Settings) -> Group:
    return await groups.create_group("acme")


async def test_only_owners_and_maintainers_start_a_warm(database: Settings, acme: Group) -> None:
    other = await groups.create_group("other")
    for name, level in (("gus", AccessLevel.GUEST), ("rita", AccessLevel.REPORTER)):
        refused = await member(acme, name, level)
        with pytest.raises(PermissionDenied, match="only Owners and Maintainers of acme"):
            await start_warm_job(refused, database, "acme", ["alpine:3.19"])
    developer = await member(acme, "dave", AccessLevel.DEVELOPER)
    with pytest.raises(PermissionDenied):
        await start_warm_job(developer, database, "acme", ["alpine:3.19"])
    # An Owner of another group cannot warm into acme (nor learn it exists).
    stranger = await member(other, "sam", AccessLevel.OWNER)
    with pytest.raises(NotFound):
        await start_warm_job(stranger, database, "acme", ["alpine:3.19"])
    maintainer = await member(acme, "mia", AccessLevel.MAINTAINER)
    read_only = Principal(user=maintainer.user, scopes=frozenset({"read_api"}))
    with pytest.raises(InsufficientScope):
        await start_warm_job(read_only, database, "acme", ["alpine:3.19"])
    assert await WarmJob.all().count() == 0

    job = await start_warm_job(maintainer, database, "acme", ["alpine:3.19", "nginx"])
    owner = await member(acme, "olga", AccessLevel.OWNER)
    await start_warm_job(owner, database, "acme", ["busybox"], all_platforms=True)

    assert (job.state, job.created_by, job.platforms) == ("queued", "mia", ("linux/amd64",))
    assert [image.image for image in job.images] == ["alpine:3.19", "nginx:latest"]
    listed = await find_warm_jobs(developer, "acme")  # readers follow the progress
    assert not listed.may_start
    assert [(view.created_by, view.all_platforms) for view in listed.jobs] == [
        ("olga", True),
        ("mia", False),
    ]
    with pytest.raises(NotFound):
        await find_warm_jobs(stranger, "acme")
    with pytest.raises(NotFound):  # another group's job id tells nothing
        await find_warm_jobs(stranger, "other", job_id=job.id)


@pytest.mark.parametrize(
    ("images", "platforms", "all_platforms", "message"),
    [
        ([], (), False, "name at least one image"),
        (["  "], (), False, "name at least one image"),
        (["Alpine!"], (), False, "'Alpine!' is not an image reference"),
        (["alpine:bad tag"], (), False, "is not an image reference"),
        (["ghcr.io/owner/tool:1"], (), False, "has no upstream for ghcr.io"),
        (["alpine"], ("amd64",), False, "'amd64' is not a platform"),
        (["alpine"], ("linux/arm64",), True, "not both"),
    ],
)
async def test_requests_that_could_not_succeed_are_refused_and_leave_no_job(
    database: Settings,
    acme: Group,
    images: list[str],
    platforms: tuple[str, ...],
    all_platforms: bool,
    message: str,
) -> None:
    with pytest.raises(InvalidInput, match=message):
        await start_warm_job(
            OPERATOR, database, "acme", images, platforms=platforms, all_platforms=all_platforms
        )
    assert await WarmJob.all().count() == 0 and await WarmJobImage.all().count() == 0


async def test_claims_take_the_oldest_job_once(database: Settings, acme: Group) -> None:
    first = await start_warm_job(OPERATOR, database, "acme", ["alpine"])
    second = await start_warm_job(OPERATOR, database, "acme", ["nginx"])

    taken = [await warm_jobs.claim(), await warm_jobs.claim(), await warm_jobs.claim()]

    assert [held.job_id if held else None for held in taken] == [first.id, second.id, None]
    assert await WarmJob.filter(state=WarmState.RUNNING).count() == 2
    assert await warm_jobs.claim(first.id) is None  # the command line's claim of its own


async def test_a_job_whose_runner_died_is_taken_over_after_its_lease(
    database: Settings, acme: Group
) -> None:
    start = clock.now()
    clock.set_clock(lambda: start)
    job = await start_warm_job(OPERATOR, database, "acme", ["alpine"])
    dead = await warm_jobs.claim()
    assert dead is not None and dead.job_id == job.id
    # The runner's process is gone: nobody renews its lease. Until it passes, the
    # job is still the dead runner's.
    clock.set_clock(lambda: start + warm_jobs.LEASE - timedelta(seconds=1))
    assert await warm_jobs.claim() is None

    clock.set_clock(lambda: start + warm_jobs.LEASE + timedelta(seconds=1))
    restarted = await warm_jobs.claim()

    assert restarted is not None and restarted.job_id == job.id
    assert restarted.holder != dead.holder
    assert not await warm_jobs.renew(dead)  # the old runner, if it woke up, stops
    assert await warm_jobs.renew(restarted)


async def test_a_starter_who_lost_access_warms_nothing(database: Settings, acme: Group) -> None:
    maintainer = await member(acme, "mia", AccessLevel.MAINTAINER)
    job = await start_warm_job(maintainer, database, "acme", ["alpine:3.19"])
    assert maintainer.user is not None
    await groups.remove_member(acme, maintainer.user)
    held = await warm_jobs.claim(job.id)
    assert held is not None
    cache = PullThroughCache.from_settings(database)
    try:
        finished = await run_warm_job(cache, database, held)
    finally:
        await cache.aclose()

    assert finished.state == "failed"
    (image,) = finished.images
    assert image.state == "failed"
    assert image.error is not None and image.error.startswith("may not pull from the group")


@pytest.fixture
async def on_postgres(
    tmp_path: Path, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Settings]:
    # Tortoise keeps built statements per model: none of SQLite's may be reused here.
    monkeypatch.setattr(base_executor, "EXECUTOR_CACHE", {})
    url = postgres.create_database("warm_jobs")
    settings = load_settings({}, data_dir=tmp_path, database_url=url)
    await db.migrate(settings)
    await db.init_db(settings)
    try:
        yield settings
    finally:
        await db.close_db()


@pytest.mark.e2e
async def test_two_claimers_on_postgres_skip_the_locked_job(on_postgres: Settings) -> None:
    await groups.create_group("acme")
    first = await start_warm_job(OPERATOR, on_postgres, "acme", ["alpine"])
    second = await start_warm_job(OPERATOR, on_postgres, "acme", ["nginx"])
    locked = asyncio.Event()

    async def other_claimer() -> warm_jobs.Claim | None:
        await locked.wait()  # created outside the transaction: its own connection
        return await warm_jobs.claim()

    claimer = asyncio.create_task(other_claimer())
    async with in_transaction() as connection:
        # Another instance is in the middle of claiming the first job.
        await connection.execute_query(
            "SELECT id FROM dependency_proxy_warm_jobs WHERE id = $1 FOR UPDATE", [first.id]
        )
        locked.set()
        taken = await asyncio.wait_for(claimer, timeout=10)  # no wait for the lock

    assert taken is not None and taken.job_id == second.id
    both = await asyncio.gather(warm_jobs.claim(), warm_jobs.claim())
    assert [held.job_id if held else None for held in both].count(first.id) == 1
    assert None in [held.job_id if held else None for held in both]
