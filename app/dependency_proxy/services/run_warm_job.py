"""Run a claimed pre-warm job: each image pulled through the cache as a client would.

The manifest by tag goes through `get_manifest` (the group's upstreams in
order, their credentials, revalidation), an index's chosen platform manifests
by digest likewise, and every config and layer blob through `get_blob`: the
download coordinator, so a warm and a client pull of one digest share one
upstream GET, and the grant rules, so bytes another group fetched are only
recorded for this group after its own upstream confirmed them. A download is
read to its end; only then (digest verified, committed) is the group's row
recorded, so a failed image leaves no partial blob behind.

The run pulls as the person who started the job (the operator for a job
from the command line), checked again now: someone who lost access since
warms nothing. Progress goes to the job's rows as it happens, which is what
every surface shows; the lease is renewed meanwhile (`warm_jobs.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

from app.accounts.models import User
from app.accounts.principal import Principal
from app.config import Settings
from app.dependency_proxy import warm_jobs
from app.dependency_proxy.bodies import StreamBody
from app.dependency_proxy.cache import PullThroughCache
from app.dependency_proxy.errors import DependencyProxyError
from app.dependency_proxy.models import Blob, CacheStatus, WarmJob, WarmJobImage, WarmState
from app.dependency_proxy.references import DIGEST_RE, index_platforms
from app.dependency_proxy.services.authorize_pull import PullContext, authorize_pull
from app.dependency_proxy.services.get_blob import get_blob
from app.dependency_proxy.services.get_manifest import get_manifest
from app.dependency_proxy.warm_jobs import LEASE, Claim, WarmJobView
from app.errors import DockyardError
from app.groups.models import Group

log = logging.getLogger("dockyard.warm")

INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
# Bytes progress is written at most this often per image (and at each blob's end).
PROGRESS_SECONDS = 0.5


class _LeaseLost(Exception):
    """Another runner took the job over (ours was presumed dead)."""


def _blob_sizes(content: bytes) -> dict[str, int]:
    """digest → size of the config and layers a single-platform manifest names."""
    try:
        document = json.loads(content)
        entries = [document["config"], *document["layers"]]
    except (ValueError, KeyError, TypeError):
        raise DependencyProxyError("the manifest names no config and layers") from None
    sizes: dict[str, int] = {}
    for entry in entries:
        digest, size = entry.get("digest"), entry.get("size")
        if isinstance(digest, str) and DIGEST_RE.match(digest) and isinstance(size, int):
            sizes[digest] = size
    return sizes


def _chosen(content: bytes, job: WarmJob) -> list[str]:
    """The platform manifests of an index this job wants, in the index's order."""
    listed = index_platforms(content)
    if job.all_platforms:
        return list(listed)
    wanted = warm_jobs.platforms_of(job)
    chosen = [digest for digest, platform in listed.items() if platform in wanted]
    if not chosen:
        offered = ", ".join(sorted(set(listed.values()))) or "none"
        raise DependencyProxyError(
            f"the index has no manifest for {', '.join(wanted)} (it offers {offered})"
        )
    return chosen


async def _manifests(
    cache: PullThroughCache, pull: PullContext, row: WarmJobImage, job: WarmJob
) -> list[bytes]:
    top = await get_manifest(cache, pull, row.image, row.reference, send_body=False)
    if top.media_type not in INDEX_TYPES:
        return [top.content]
    found = []
    for digest in _chosen(top.content, job):
        platform = await get_manifest(cache, pull, row.image, digest, send_body=False)
        found.append(platform.content)
    return found


async def _fetch_blob(
    cache: PullThroughCache, pull: PullContext, row: WarmJobImage, digest: str
) -> None:
    """The blob through the cache; a download is read to its end (that records the row)."""
    held = await Blob.filter(group_id=pull.group.id, digest=digest, status=CacheStatus.DEFAULT)
    if held:  # already the group's: nothing to fetch, and nothing served to count
        row.bytes_done += held[0].size
        return
    body = await get_blob(cache, pull, row.image, digest)
    if not isinstance(body, StreamBody) or body.cache == "HIT":
        if isinstance(body, StreamBody):
            await body.aclose()  # stored in the bucket: nothing to fetch
        row.bytes_done += body.size or 0
        return
    written = time.monotonic()
    async for chunk in body.chunks():
        row.bytes_done += len(chunk)
        if time.monotonic() - written > PROGRESS_SECONDS:
            written = time.monotonic()
            await WarmJobImage.filter(id=row.id).update(bytes_done=row.bytes_done)


async def _warm_image(
    cache: PullThroughCache, pull: PullContext, row: WarmJobImage, job: WarmJob
) -> None:
    sizes: dict[str, int] = {}
    for content in await _manifests(cache, pull, row, job):
        sizes.update(_blob_sizes(content))
    row.layers_total, row.bytes_total = len(sizes), sum(sizes.values())
    row.layers_done = row.bytes_done = 0
    await row.save(update_fields=["layers_total", "bytes_total", "layers_done", "bytes_done"])
    for digest in sizes:
        await _fetch_blob(cache, pull, row, digest)
        row.layers_done += 1
        await row.save(update_fields=["layers_done", "bytes_done"])


async def _pull_context(job: WarmJob, settings: Settings) -> PullContext:
    group = await Group.get(id=job.group_id)  # type: ignore[attr-defined]
    if job.user_id is None:  # type: ignore[attr-defined]
        principal = Principal.operator()
    else:
        principal = Principal(user=await User.get(id=job.user_id))  # type: ignore[attr-defined]
    return await authorize_pull(principal, group.full_path, settings)


async def _run_images(
    cache: PullThroughCache, settings: Settings, job: WarmJob, held: Claim
) -> None:
    rows = (
        await WarmJobImage.filter(job_id=job.id).exclude(state=WarmState.DONE).order_by("position")
    )
    try:
        pull = await _pull_context(job, settings)
    except DockyardError as error:
        for row in rows:
            await _mark(row, WarmState.FAILED, f"may not pull from the group: {error.message}")
        return
    for row in rows:
        if not await warm_jobs.renew(held):
            raise _LeaseLost()
        await _mark(row, WarmState.RUNNING, None)
        try:
            await _warm_image(cache, pull, row, job)
        except DockyardError as error:
            log.info("warm job %s: %s failed: %s", job.id, row.image, error.message)
            await _mark(row, WarmState.FAILED, error.message)
        except Exception:  # one image's bug must not end the job; its reason is logged
            log.exception("warm job %s: %s failed", job.id, row.image)
            await _mark(row, WarmState.FAILED, "internal error (see the server log)")
        else:
            await _mark(row, WarmState.DONE, None)


async def _mark(row: WarmJobImage, state: WarmState, error: str | None) -> None:
    row.state, row.error = state, (error or None) and error[:1024]
    await row.save(update_fields=["state", "error", "layers_done", "bytes_done"])


async def _heartbeat(held: Claim) -> None:
    while True:
        await asyncio.sleep(LEASE.total_seconds() / 4)
        with contextlib.suppress(Exception):  # the next beat, or the next image, retries
            await warm_jobs.renew(held)


async def run_warm_job(cache: PullThroughCache, settings: Settings, held: Claim) -> WarmJobView:
    """Run the job `held` names (claimed with `warm_jobs.claim`) to its end."""
    job = await WarmJob.get(id=held.job_id).prefetch_related("group")
    beat = asyncio.create_task(_heartbeat(held), name=f"warm job {job.id} lease")
    try:
        await _run_images(cache, settings, job, held)
        await warm_jobs.finish(held)
    except _LeaseLost:
        log.warning("warm job %s was taken over by another runner", job.id)
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    await job.refresh_from_db()
    log.info("warm job %s in %s: %s", job.id, job.group.full_path, WarmState(job.state).label)
    return await warm_jobs.view_of(job, job.group.full_path)


async def run_next_warm_job(cache: PullThroughCache, settings: Settings) -> WarmJobView | None:
    """Claim and run the oldest queued (or abandoned) job; None when there is none."""
    held = await warm_jobs.claim()
    return None if held is None else await run_warm_job(cache, settings, held)


async def run_warm_jobs_forever(
    cache: PullThroughCache, settings: Settings, interval_seconds: float
) -> None:
    """Started by the lifespan beside the cleanup worker: runs jobs as they come."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            while await run_next_warm_job(cache, settings) is not None:
                pass
        except Exception:  # keep the worker alive; the job's lease lets it be retried
            log.exception("warm jobs failed")
