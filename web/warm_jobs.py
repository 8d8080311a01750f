"""Pre-warm on the Dependency Proxy page: the form (Owners and Maintainers) and the
progress as JSON for the page's script. The services decide who may; this module
translates their answers into messages, a redirect, or JSON."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.accounts.principal import Principal
from app.dependency_proxy.services.find_warm_jobs import find_warm_jobs
from app.dependency_proxy.services.start_warm_job import start_warm_job
from app.errors import InvalidInput
from app.groups.models import Group
from web.guards import checked, text
from web.rendering import flash, redirect

PAGE = "dependency_proxy"
RECENT_JOBS = 5
_SEPARATORS = re.compile(r"[\s,]+")


def _page(group: Group) -> str:
    return f"/groups/{group.full_path}/-/{PAGE}#warm"


async def start(request: Request, principal: Principal, group: Group) -> Response:
    form = await request.form()
    images = [part for part in _SEPARATORS.split(text(form, "images")) if part]
    platforms = [part for part in _SEPARATORS.split(text(form, "platforms")) if part]
    try:
        job = await start_warm_job(  # others: a 403 or 404 page
            principal,
            request.app.state.settings,
            group.full_path,
            images,
            platforms=platforms,
            all_platforms=checked(form, "all_platforms"),
        )
    except InvalidInput as error:
        flash(request, f"Nothing was warmed: {error.message}", "alert")
        return redirect(_page(group))
    flash(request, f"Warm job {job.id} queued: {len(job.images)} image(s).")
    return redirect(_page(group))


async def progress(request: Request, principal: Principal, group: Group) -> Response:
    """The newest jobs as JSON (what `--json` prints per job), for the page's poll."""
    found = await find_warm_jobs(principal, group, first=RECENT_JOBS)
    return JSONResponse(
        {"jobs": [job.as_dict() for job in found.jobs]}, headers={"Cache-Control": "no-store"}
    )


pages = {
    ("POST", f"{PAGE}/warm"): start,
    ("GET", f"{PAGE}/warm_jobs.json"): progress,
}
